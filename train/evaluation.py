"""Evaluation of a classifier on an eval split: centre crops and whole clips.

    evaluate(model, config)            {"split", "centre_crop": metrics, "full_clip": metrics}
    evaluate_workdir(workdir, config)  --mode=eval: the workdir's best checkpoint on config's data
    format_results(results)            the table the binaries print

`config` here supplies the data only (dataset.*, eval_batch_size); the model is given.
"""
from __future__ import annotations  # `str | None` annotations on Python 3.9

import json
import os

from absl import logging
import numpy as np
import tensorflow as tf

import tf_frontends
from tf_frontends import plotting
from train import atomic_json
from train import checkpoints
from train import metrics as metrics_lib
from train import workdir as workdir_lib
from train.data import dataset_info
from train.data import input_pipeline

RESULTS_NAME = "eval_results.json"


def make_score_fn(model, crop_samples: int):
  """tf.function: (audio [B, L], num_samples [B] or None) -> scores [B, C].

  With num_samples: mean score over windows of crop_samples at hop crop_samples
  (the last zero-padded) starting inside each clip; a clip shorter than the crop
  is one zero-padded window.
  """
  # Fixed signatures: batches differ in size (the last one) and clip length,
  # which would retrace (and warn) several times per evaluation.
  audio_spec = tf.TensorSpec([None, None], tf.float32)

  @tf.function(input_signature=[audio_spec])
  def crop_scores(audio):
    return model.scores(model(audio, training=False))

  @tf.function(input_signature=[audio_spec, tf.TensorSpec([None], tf.int32)])
  def clip_scores(audio, num_samples):
    windows = tf.signal.frame(audio, crop_samples, crop_samples, pad_end=True)  # [B, W, crop]
    batch_size, num_windows = tf.shape(windows)[0], tf.shape(windows)[1]
    scores = model.scores(model(tf.reshape(windows, [-1, crop_samples]), training=False))
    scores = tf.reshape(scores, [batch_size, num_windows, -1])
    starts = tf.range(num_windows) * crop_samples
    valid = (starts[tf.newaxis, :] < num_samples[:, tf.newaxis]) | (starts[tf.newaxis, :] == 0)
    valid = tf.cast(valid, scores.dtype)[:, :, tf.newaxis]
    return tf.reduce_sum(scores * valid, axis=1) / tf.reduce_sum(valid, axis=1)

  return crop_scores, clip_scores


def evaluate(model, config, split: str | None = None, full_clip: bool | None = None) -> dict:
  """Metrics on centre crops (and whole clips) of an eval split; runs on this worker alone."""
  data_dir = config.dataset.data_dir
  split = split or config.dataset.eval_split
  full_clip = config.dataset.full_clip_eval if full_clip is None else full_clip
  sample_rate = dataset_info.read(data_dir)["sample_rate"]
  crop_scores, clip_scores = make_score_fn(
      model, input_pipeline.crop_length_samples(config.dataset.crop_seconds, sample_rate))
  results = {"split": split}
  modes = ["eval"] + (["full_clip"] if full_clip else [])
  for mode in modes:
    ds = input_pipeline.make_dataset(data_dir, split, batch_size=config.eval_batch_size,
                                     crop_seconds=config.dataset.crop_seconds, mode=mode)
    labels, scores = [], []
    for batch in ds:
      if mode == "eval":
        scores.append(crop_scores(batch["audio"]).numpy())
      else:
        scores.append(clip_scores(batch["audio"], batch["num_samples"]).numpy())
      labels.append(batch["labels"].numpy())
    y_true, y_score = np.concatenate(labels), np.concatenate(scores)
    result = metrics_lib.audioset_metrics(y_true, y_score)
    result["num_examples"] = int(y_true.shape[0])
    results["centre_crop" if mode == "eval" else "full_clip"] = result
  return results


def random_score_metrics(config, split: str | None = None, seed: int = 0) -> dict:
  """The metrics of uniform random scores on an eval split: the chance level to beat."""
  ds = input_pipeline.make_dataset(config.dataset.data_dir, split or config.dataset.eval_split,
                                   batch_size=config.eval_batch_size,
                                   crop_seconds=config.dataset.crop_seconds, mode="eval")
  y_true = np.concatenate([batch["labels"].numpy() for batch in ds])
  y_score = np.random.default_rng(seed).random(y_true.shape)
  result = metrics_lib.audioset_metrics(y_true, y_score)
  result["num_examples"] = int(y_true.shape[0])
  return result


def format_results(results: dict) -> str:
  lines = [f"{'eval (' + results['split'] + ')':<16} {'mAP':>7} {'mAUC':>7} {'d-prime':>8} "
           f"{'classes':>8} {'excluded':>8} {'clips':>6}"]
  for name in ("centre_crop", "full_clip", "random_scores"):
    if name in results:
      r = results[name]
      lines.append(f"{name:<16} {r['mAP']:7.4f} {r['mAUC']:7.4f} {r['dprime']:8.4f} "
                   f"{r['num_classes_evaluated']:8d} {r['num_classes_excluded']:8d} "
                   f"{r['num_examples']:6d}")
  return "\n".join(lines)


def write_summaries(results: dict, step: int, writer) -> None:
  with writer.as_default(step=step):
    for name in ("centre_crop", "full_clip"):
      for key in ("mAP", "mAUC", "dprime"):
        if name in results:
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
  if not isinstance(model.frontend, tf_frontends.MelFilterbanks):
    figures["frontend_filters"] = plotting.plot_filterbank(model.frontend)
  return {name: tf.image.decode_png(plotting.figure_to_png(figure))[tf.newaxis]
          for name, figure in figures.items()}


def write_results(workdir: str, results: dict) -> None:
  """WORKDIR/eval_results.json (numpy scalars as floats)."""
  atomic_json.write(os.path.join(workdir, RESULTS_NAME),
                    json.loads(json.dumps(results, default=float)))


def evaluate_workdir(workdir: str, data_config) -> dict:
  """--mode=eval: the best checkpoint (else the latest) on the eval split.

  The model, classes and crop length are the workdir's; the data (dataset.*, eval_batch_size)
  data_config's, which must have the run's classes. The workdir's config is left as restored.
  """
  run_info = workdir_lib.read_run_info(workdir)
  data_dir = data_config.dataset.data_dir
  workdir_lib.check_data_matches(run_info, dataset_info.read(data_dir), data_dir, workdir)
  which = "best"                    # falls back to the latest
  model, _, _ = checkpoints.restore_run(workdir, which)
  eval_config = data_config.copy_and_resolve_references()
  eval_config.dataset.crop_seconds = run_info["crop_seconds"]   # the crop the run trained on
  results = evaluate(model, eval_config)
  results["random_scores"] = random_score_metrics(eval_config)
  results["checkpoint"] = which
  logging.info("\n%s", format_results(results))
  write_results(workdir, results)
  return results
