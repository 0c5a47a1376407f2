"""Evaluation of a classifier on an eval split: centre crops and whole clips.

    evaluate(model, config, strategy=None)  {"split", "centre_crop": metrics, "full_clip": metrics}
                                            (metrics.multiclass_metrics for a multiclass model)
    evaluate_run(config, workdir, tpu="")   --mode=eval: checks, strategy, lock, evaluate_workdir
    evaluate_workdir(workdir, config)       the workdir's best checkpoint on config's data
    format_results(results)                 the table the binaries print

`config` here supplies the data only (dataset.*, eval_batch_size); the model is given, and its
`multi_label` (AudioClassifier's; True when a stand-in lacks it) picks the metrics.
Evaluation runs under the training strategy: each replica scores its share of the clips,
config.eval_batch_size crops or windows per step over all replicas (a whole clip is scored as
windows of the crop length, so memory does not grow with the clip), the scores of every
replica are gathered, and every worker computes the same metrics once. A clip is scored
exactly once whether or not the split divides by the replicas or the batch.
"""
from __future__ import annotations  # `str | None` annotations on Python 3.9

import contextlib

import numpy as np
import tensorflow as tf

from tf_frontends import plotting
from train import checkpoints
from train import metrics as metrics_lib
from train import validation
from train.data import dataset_info
from train.data import input_pipeline


def per_replica_batch_size(global_batch_size: int, strategy) -> int:
  """Crops or windows per forward pass on each replica (at least 1: an eval batch that does not
  divide by the replicas is rounded down rather than refused after a whole epoch of training)."""
  return max(1, global_batch_size // strategy.num_replicas_in_sync)


def _scored_elements(config, split: str, mode: str, crop_samples: int, batch_size: int,
                     ctx: tf.distribute.InputContext) -> tf.data.Dataset:
  """This input pipeline's batches {"audio": [batch_size, crop_samples], "labels": [batch_size, C],
  "key": [batch_size] int32}, every shape static, then batches of padding (key -1) forever.

  An element is a clip's centre crop (mode "eval") or one of its windows (mode "full_clip":
  hop = crop, the last window zero-padded, a clip shorter than the crop is one window). key =
  the clip's index in this pipeline * num_input_pipelines + input_pipeline_id, the same for all
  windows of a clip and unique over the pipelines. The padding lets every replica take a batch
  at every step whatever its share of the split (static shapes, as TPUs need).
  """
  # Whole clips one at a time: a batch of them is padded to its longest clip.
  clips = input_pipeline.make_dataset(
      config.dataset.data_dir, split, batch_size=batch_size if mode == "eval" else 1,
      crop_seconds=config.dataset.crop_seconds, mode=mode, input_context=ctx).unbatch()
  num_pipelines, pipeline_id = ctx.num_input_pipelines, ctx.input_pipeline_id

  def element(index, clip):
    return {"audio": clip["audio"], "labels": clip["labels"],
            "key": tf.cast(index * num_pipelines + pipeline_id, tf.int32)}

  def windows(index, clip):
    audio = clip["audio"]
    num_windows = tf.maximum(1, (tf.shape(audio)[0] + crop_samples - 1) // crop_samples)
    audio = tf.pad(audio, [[0, num_windows * crop_samples - tf.shape(audio)[0]]])
    return tf.data.Dataset.from_tensor_slices(tf.reshape(audio, [num_windows, crop_samples])).map(
        lambda window: element(index, {"audio": window, "labels": clip["labels"]}))

  clips = clips.enumerate()
  elements = clips.map(element) if mode == "eval" else clips.flat_map(windows)
  num_classes = elements.element_spec["labels"].shape[0]
  padding = {"audio": tf.zeros([crop_samples]), "labels": tf.zeros([num_classes]),
             "key": tf.constant(-1, tf.int32)}
  elements = elements.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
  return elements.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def make_score_step(model, strategy):
  """tf.function: distributed iterator -> (scores [G, C], labels [G, C], keys [G]) of one batch
  per replica, gathered from every replica (G = replicas x per-replica batch)."""
  def replica_scores(batch):
    scores = tf.cast(model.scores(model(batch["audio"], training=False)), tf.float32)
    return scores, batch["labels"], batch["key"]

  @tf.function
  def step(iterator):
    outputs = strategy.run(replica_scores, args=(next(iterator),))
    return tuple(strategy.gather(value, axis=0) for value in outputs)
  return step


class _ClipAccumulator:
  """Per-clip sums of window scores (float64), window counts and labels, by key."""

  def __init__(self, num_classes: int):
    self.sums = np.zeros([0, num_classes])
    self.counts = np.zeros([0], np.int64)
    self.labels = np.zeros([0, num_classes], np.float32)

  def add(self, keys, scores, labels):
    size = int(keys.max()) + 1
    if size > len(self.counts):
      grow = max(size, 2 * len(self.counts)) - len(self.counts)
      self.sums = np.pad(self.sums, [[0, grow], [0, 0]])
      self.counts = np.pad(self.counts, [[0, grow]])
      self.labels = np.pad(self.labels, [[0, grow], [0, 0]])
    np.add.at(self.sums, keys, scores)
    np.add.at(self.counts, keys, 1)
    self.labels[keys] = labels

  def result(self):
    """(labels [N, C], mean scores [N, C] float32) of the clips seen, in key order."""
    seen = self.counts > 0
    return self.labels[seen], (self.sums[seen] / self.counts[seen, np.newaxis]).astype(np.float32)


def sync_replica_statistics(model, strategy) -> None:
  """Sets every replica's copy of each sync-on-read MEAN variable (BatchNorm's moving statistics:
  in training each replica updates its own) to the replicas' mean, the value checkpoints hold,
  so that every replica scores with the model a single device would restore."""
  if strategy.num_replicas_in_sync == 1:
    return
  with strategy.scope():
    for variable in model.variables:
      if (variable.synchronization == tf.VariableSynchronization.ON_READ
          and variable.aggregation == tf.VariableAggregation.MEAN):
        variable.assign(variable.read_value())


def score_clips(model, config, split: str, mode: str, strategy=None, step=None):
  """(labels [N, C], scores [N, C] float32) of every clip of the split, each once, in the
  order of the split's shards (on one input pipeline); mode "eval": the centre crop's scores,
  "full_clip": the mean over the clip's windows. Every replica of `strategy` (default: the
  current one) scores its share, config.eval_batch_size crops or windows per step over all
  replicas, whatever the clip lengths; all workers get the result. `step`: make_score_step's,
  to reuse one trace across calls.
  """
  strategy = strategy or tf.distribute.get_strategy()
  step = step or make_score_step(model, strategy)
  sample_rate = dataset_info.read(config.dataset.data_dir)["sample_rate"]
  crop_samples = input_pipeline.crop_length_samples(config.dataset.crop_seconds, sample_rate)
  batch_size = per_replica_batch_size(config.eval_batch_size, strategy)
  iterator = iter(strategy.distribute_datasets_from_function(
      lambda ctx: _scored_elements(config, split, mode, crop_samples, batch_size, ctx)))
  accumulator = None
  while True:                  # until a step brings padding only, on every worker alike
    scores, labels, keys = (value.numpy() for value in step(iterator))
    real = keys >= 0
    if not real.any():
      break
    accumulator = accumulator or _ClipAccumulator(labels.shape[1])
    accumulator.add(keys[real], scores[real].astype(np.float64), labels[real])
  if accumulator is None:
    raise ValueError(f"split {split!r} of {config.dataset.data_dir} has no clips")
  return accumulator.result()


def evaluate(model, config, split: str | None = None, full_clip: bool | None = None,
             strategy=None) -> dict:
  """Metrics on centre crops (and whole clips) of an eval split.

  Runs under `strategy` (default: the current one): each replica scores its share of the
  clips, every worker gets all scores and computes the same metrics.
  """
  strategy = strategy or tf.distribute.get_strategy()
  split = split or config.dataset.eval_split
  full_clip = config.dataset.full_clip_eval if full_clip is None else full_clip
  sync_replica_statistics(model, strategy)
  step = make_score_step(model, strategy)
  results = {"split": split}
  for mode in ["eval"] + (["full_clip"] if full_clip else []):
    y_true, y_score = score_clips(model, config, split, mode, strategy, step)
    result = _metrics(y_true, y_score, getattr(model, "multi_label", True))
    result["num_examples"] = int(y_true.shape[0])
    results["centre_crop" if mode == "eval" else "full_clip"] = result
  return results


def _metrics(y_true, y_score, multi_label: bool) -> dict:
  if multi_label:
    return metrics_lib.audioset_metrics(y_true, y_score)
  return metrics_lib.multiclass_metrics(y_true, y_score)


def random_score_metrics(config, split: str | None = None, seed: int = 0, *,
                         multi_label: bool = True) -> dict:
  """The metrics of uniform random scores on an eval split: the chance level to beat
  (multi_label False: multiclass_metrics', accuracy included)."""
  ds = input_pipeline.make_dataset(config.dataset.data_dir, split or config.dataset.eval_split,
                                   batch_size=config.eval_batch_size,
                                   crop_seconds=config.dataset.crop_seconds, mode="eval")
  y_true = np.concatenate([batch["labels"].numpy() for batch in ds])
  y_score = np.random.default_rng(seed).random(y_true.shape)
  result = _metrics(y_true, y_score, multi_label)
  result["num_examples"] = int(y_true.shape[0])
  return result


def format_results(results: dict) -> str:
  """The table of results (an accuracy column for multiclass runs)."""
  accuracy = "accuracy" in results.get("centre_crop", {})
  lines = [f"{'eval (' + results['split'] + ')':<16} " + (f"{'accuracy':>8} " if accuracy else "")
           + f"{'mAP':>7} {'mAUC':>7} {'d-prime':>8} {'classes':>8} {'excluded':>8} {'clips':>6}"]
  for name in ("centre_crop", "full_clip", "random_scores"):
    if name in results:
      r = results[name]
      lines.append(f"{name:<16} " + (f"{r['accuracy']:8.4f} " if accuracy else "")
                   + f"{r['mAP']:7.4f} {r['mAUC']:7.4f} {r['dprime']:8.4f} "
                   f"{r['num_classes_evaluated']:8d} {r['num_classes_excluded']:8d} "
                   f"{r['num_examples']:6d}")
  return "\n".join(lines)


def summary_line(results: dict) -> str:
  """One line of the headline metrics (the full table is format_results)."""
  return ", ".join(
      f"{name} " + (f"accuracy {results[name]['accuracy']:.4f} "
                    if "accuracy" in results[name] else "")
      + f"mAP {results[name]['mAP']:.4f} d' {results[name]['dprime']:.3f}"
      for name in ("centre_crop", "full_clip") if name in results)


def write_summaries(results: dict, step: int, writer) -> None:
  with writer.as_default(step=step):
    for name in ("centre_crop", "full_clip"):
      for key in ("accuracy", "mAP", "mAUC", "dprime"):
        if key in results.get(name, {}):
          tf.summary.scalar(f"{name}/{key}", results[name][key])


def frontend_images(model, config) -> dict:
  """TensorBoard images {name: [1, H, W, 4] uint8}: the frontend's output for one
  eval clip and, for learnable frontends, its filter responses and centre
  frequencies against the mel initialisation (tf_frontends.plotting)."""
  ds = input_pipeline.make_dataset(config.dataset.data_dir, config.dataset.eval_split,
                                   batch_size=1, crop_seconds=config.dataset.crop_seconds,
                                   mode="eval")
  features = model.frontend(next(iter(ds))["audio"])[0].numpy()
  figures = {"frontend_output": plotting.plot_features(features)}
  if model.frontend.filter_taps() is not None:    # None: fixed filters (mel)
    figures["frontend_filters"] = plotting.plot_filterbank(model.frontend)
  return {name: tf.image.decode_png(plotting.figure_to_png(figure))[tf.newaxis]
          for name, figure in figures.items()}


def evaluate_run(config, workdir: str, tpu: str = "") -> dict:
  """--mode=eval: the checks every mode runs (validation.prepare_run), then evaluate_workdir
  under the run's strategy, the workdir locked by the chief (every worker scores its share)."""
  workdir, _, strategy = validation.prepare_run(config, workdir, "eval", tpu)
  with (workdir.lock("train.main --mode=eval") if workdir.is_chief
        else contextlib.nullcontext()):
    return evaluate_workdir(workdir, config, strategy=strategy)


def evaluate_workdir(workdir, data_config, strategy=None) -> dict:
  """--mode=eval: the best checkpoint (else the latest) on the eval split, and under "test" on
  the test split when `dataset.test_split` names one.

  The model, classes and crop length are the workdir's; the data (dataset.*, eval_batch_size)
  data_config's, which must have the run's classes. The workdir's config is left as restored.
  The model is restored and scored under `strategy` (default: the current one); only the
  chief's Workdir writes the results.
  """
  strategy = strategy or tf.distribute.get_strategy()
  run_info = workdir.read_run_info()
  data_dir = data_config.dataset.data_dir
  workdir.check_data_matches(run_info, dataset_info.read(data_dir), data_dir)
  which = "best"                    # falls back to the latest
  eval_config = data_config.copy_and_resolve_references()
  eval_config.dataset.crop_seconds = run_info["crop_seconds"]   # the crop the run trained on
  test_split = eval_config.dataset.get("test_split", "")
  with strategy.scope():            # evaluate's default strategy is this one too
    model, _, _ = checkpoints.restore_run(workdir, which)
    results = evaluate(model, eval_config)
    if test_split:                  # scored once per finished run, never used to choose
      results["test"] = evaluate(model, eval_config, split=test_split)
  results["random_scores"] = random_score_metrics(eval_config, multi_label=model.multi_label)
  results["checkpoint"] = which
  if test_split:
    results["test"]["random_scores"] = random_score_metrics(eval_config, split=test_split,
                                                            multi_label=model.multi_label)
  workdir.record_evaluation(results)
  return results
