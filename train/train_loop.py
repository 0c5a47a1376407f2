"""Training and evaluation of the audio classifier under any tf.distribute strategy.

    train_and_evaluate(config, workdir, mode="train_and_eval")   # the binary's entry point

Workdir layout (export and eval rebuild a run from it; train/workdir.py reads and writes it):
    config.json            the run's ConfigDict, num_classes resolved (written once the run
                           has proved it matches the workdir)
    run_info.json          classes, sample rate, crop length, model fingerprint
    checkpoints/           tf.train.CheckpointManager of Checkpoint(model, optimizer, step)
    best/                  the same objects at the best eval mAP (centre crops) + best.json
    eval_results.json      the latest evaluation (centre crop and full clip)
    train/, eval/          TensorBoard logs

Resuming: a restarted run restores checkpoints/ and continues. Each epoch reads a
dataset seeded with (seed + epoch) and skips the batches it already trained on,
and SpecAugment masks are stateless functions of (seed, step), so a run killed and
restarted ends with the weights of an unkilled one (up to the stateful RNG of
dropout / stochastic depth, which restart with the process).
"""
from __future__ import annotations  # `str | None` annotations on Python 3.9

import json
import math
import os
import shutil
import time

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

import tf_frontends
from tf_frontends import plotting
from train import checkpoints
from train.data import input_pipeline
from train import metrics as metrics_lib
from train import models
from train import preemption
from train import schedules
from train import workdir as workdir_lib

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION = ("", "bfloat16", "float16")
MODES = ("train", "eval", "train_and_eval")


# ---------------------------------------------------------------- config

def validate_config(config) -> None:
  """Raises ValueError on a config that cannot work, before any work starts."""
  errors = []
  if config.frontend.name not in tf_frontends.FRONTENDS:
    errors.append(f"frontend.name={config.frontend.name!r} is not one of "
                  f"{sorted(tf_frontends.FRONTENDS)}")
  elif config.frontend.get("n_filters", 0) < 1:
    errors.append(f"frontend.n_filters must be >= 1, got {config.frontend.get('n_filters')}")
  else:
    try:
      models.create_frontend(config)
    except (TypeError, ValueError) as e:
      errors.append(f"frontend {config.frontend.name!r} refuses its arguments: {e} (build the "
                    "frontend block with train.configs.default.frontend_config)")
  if config.model.backbone not in models.BACKBONES:
    errors.append(f"model.backbone={config.model.backbone!r} is not one of "
                  f"{sorted(models.BACKBONES)}")
  for key in ("batch_size", "eval_batch_size", "steps_per_loop", "log_every_steps",
              "checkpoint_every_steps", "max_checkpoints_to_keep"):
    if config[key] < 1:
      errors.append(f"{key} must be >= 1, got {config[key]}")
  if config.num_train_steps <= 0 and config.num_epochs < 1:
    errors.append(f"num_epochs must be >= 1 (or num_train_steps > 0), got {config.num_epochs}")
  if not 0.0 <= config.model.dropout < 1.0:
    errors.append(f"model.dropout must be in [0, 1), got {config.model.dropout}")
  if not 0.0 <= config.model.stochastic_depth < 1.0:
    errors.append(f"model.stochastic_depth must be in [0, 1), got {config.model.stochastic_depth}")
  if config.dataset.crop_seconds <= 0:
    errors.append(f"dataset.crop_seconds must be > 0, got {config.dataset.crop_seconds}")
  if config.optimizer.base_learning_rate <= 0:
    errors.append(f"optimizer.base_learning_rate must be > 0, got "
                  f"{config.optimizer.base_learning_rate}")
  if config.optimizer.frontend_lr_multiplier < 0:
    errors.append("optimizer.frontend_lr_multiplier must be >= 0")
  if config.mixed_precision not in MIXED_PRECISION:
    errors.append(f"mixed_precision={config.mixed_precision!r} is not one of {MIXED_PRECISION}")
  if config.strategy not in STRATEGIES:
    errors.append(f"strategy={config.strategy!r} is not one of {STRATEGIES}")
  if config.eval_every_epochs < 0:
    errors.append(f"eval_every_epochs must be >= 0, got {config.eval_every_epochs}")
  if not config.dataset.data_dir:
    errors.append("dataset.data_dir is empty: pass --config.dataset.data_dir=DIR")
  if errors:
    raise ValueError("Bad config:\n  " + "\n  ".join(errors))


def check_splits(config, info: dict, mode: str) -> None:
  """Raises ValueError unless the splits this mode reads exist and hold examples."""
  path = os.path.join(config.dataset.data_dir, "dataset_info.json")
  needed = {"train": [config.dataset.train_split], "eval": [config.dataset.eval_split],
            "train_and_eval": [config.dataset.train_split, config.dataset.eval_split]}[mode]
  for split in needed:
    if split not in info["splits"]:
      raise workdir_lib.RunError(f"{path} has no split {split!r} (it has {sorted(info['splits'])})")
    entry = info["splits"][split]
    if entry.get("num_examples", 0) < 1:
      raise workdir_lib.RunError(
          f"Split {split!r} of {path} has no usable examples (data prep skipped "
          f"{entry.get('num_skipped', 0)}: see 'skipped' in that file); nothing to "
          f"{'train' if split == config.dataset.train_split else 'evaluate'} on.")


def _mismatch_message(workdir: str, config, fingerprint: str, run_info) -> str:
  trained = run_info["model_fingerprint"] if run_info else "that of its checkpoints"
  return (f"The given config does not match workdir {workdir}: it builds another model "
          f"(fingerprint {fingerprint}, the workdir's {trained}). Differences:\n"
          f"{workdir_lib.config_difference(workdir, config)}\n"
          "Nothing was written. Train this config in a new --workdir, or pass the workdir's "
          "own config.")


def _write_json(path: str, value) -> None:
  workdir_lib.write_json_atomically(path, json.dumps(value, indent=2))


# ---------------------------------------------------------------- strategy

def create_strategy(name: str = "auto", tpu: str = "") -> tf.distribute.Strategy:
  """auto: TPU if `tpu` is given, multi-worker if TF_CONFIG names several tasks,
  mirrored over the GPUs if there are several, else the default strategy."""
  if name == "auto":
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if tpu:
      name = "tpu"
    elif sum(len(tasks) for tasks in cluster.values()) > 1:
      name = "multi_worker"
    elif len(tf.config.list_logical_devices("GPU")) > 1:
      name = "mirrored"
    else:
      name = "default"
  if name == "tpu":
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "mirrored":
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _worker_dir(workdir: str, strategy, name: str) -> str:
  """WORKDIR/name on the chief; a throw-away folder on other workers (they must save too)."""
  if _is_chief(strategy):
    return os.path.join(workdir, name)
  resolver = strategy.cluster_resolver
  return os.path.join(workdir, "tmp_workers", f"{resolver.task_type}_{resolver.task_id}", name)


# ---------------------------------------------------------------- optimizer

class AdamW(tf_keras.optimizers.AdamW):
  """tf_keras AdamW whose update of some variables is scaled by a learning-rate multiplier.

  Scaling a gradient does not scale an Adam step (Adam is invariant to it), so
  the step itself is scaled: v <- v_old + multiplier * (v_adam - v_old). The decoupled
  weight decay (v <- v - lr * wd * v, which the base class applies to every variable before
  any update step) is scaled by the same multiplier, so 0 freezes a variable.
  """

  def __init__(self, *args, lr_multipliers=None, **kwargs):
    super().__init__(*args, **kwargs)
    self._lr_multipliers = {}      # var key -> multiplier
    for variable, multiplier in (lr_multipliers or []):
      if multiplier != 1.0:
        self._lr_multipliers[self._var_key(variable)] = float(multiplier)

  def _use_weight_decay(self, variable):
    # variables with a multiplier get their (scaled) decay in update_step
    return (self._var_key(variable) not in self._lr_multipliers
            and super()._use_weight_decay(variable))

  def update_step(self, gradient, variable):
    multiplier = self._lr_multipliers.get(self._var_key(variable))
    if multiplier is None:
      return super().update_step(gradient, variable)
    old = tf.identity(variable)
    if super()._use_weight_decay(variable):
      lr = tf.cast(self.learning_rate, variable.dtype)
      variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype) * lr)
    super().update_step(gradient, variable)
    variable.assign(old + multiplier * (variable - old))


def create_optimizer(config, model, steps_per_epoch: int, total_steps: int):
  opt = config.optimizer
  peak = schedules.scaled_learning_rate(opt.base_learning_rate, config.batch_size)
  warmup = min(int(round(opt.warmup_epochs * steps_per_epoch)), total_steps)
  schedule = schedules.WarmupCosineDecay(peak, warmup, total_steps, opt.end_learning_rate)
  multipliers = []
  if opt.frontend_lr_multiplier != 1.0:
    multipliers = [(v, opt.frontend_lr_multiplier) for v in model.frontend.trainable_variables]
  optimizer = AdamW(learning_rate=schedule, weight_decay=opt.weight_decay,
                    lr_multipliers=multipliers)
  if config.mixed_precision == "float16":
    optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer, schedule


# ---------------------------------------------------------------- model + checkpoints

def _crop_samples(config, sample_rate: int) -> int:
  return int(round(config.dataset.crop_seconds * sample_rate))


def build_model(config, sample_rate: int = 16000):
  """create_model + one call on silence so every variable exists (for restore)."""
  model = models.create_model(config)
  model(tf.zeros([1, _crop_samples(config, sample_rate)]), training=False)
  return model


def _checkpoint(model, optimizer, step):
  return tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)


def restore_model(workdir: str, which: str = "best"):
  """(model, config) of a run, restored in a fresh process from the workdir alone (restore_run)."""
  model, config, _ = restore_run(workdir, which)
  return model, config


def restore_run(workdir: str, which: str = "best"):
  """(model, config, checkpoint path) of a run, restored from the workdir alone.

  which: "best" (WORKDIR/best, else the latest), "latest" (WORKDIR/checkpoints) or a
  checkpoint path; a damaged checkpoint falls back to the previous one. Raises
  CheckpointMismatchError when the checkpoint or the config.json holds another model than
  the one the run trained (run_info.json's fingerprint).
  """
  config = workdir_lib.load_config(workdir)
  info = workdir_lib.read_run_info(workdir)
  paths = checkpoints.candidates(workdir, which)
  _set_precision(config)
  model = build_model(config, info["sample_rate"])
  _check_fingerprint(model, info, os.path.join(workdir, workdir_lib.CONFIG_NAME), workdir)
  step = tf.Variable(0, dtype=tf.int64)
  path = checkpoints.restore(tf.train.Checkpoint(model=model, step=step), model, paths,
                             model_description=f"the model of workdir {workdir}")
  logging.info("Restored %s (step %d)", path, int(step.numpy()))
  return model, config, path


def _check_fingerprint(model, info: dict, config_name: str, workdir: str) -> None:
  """Raises CheckpointMismatchError unless `model` (built from config_name) is the workdir's."""
  fingerprint = workdir_lib.model_fingerprint(model)
  if fingerprint != info["model_fingerprint"]:
    raise checkpoints.CheckpointMismatchError(
        f"{config_name} builds a model (fingerprint {fingerprint}) other than the one trained "
        f"in {workdir} ({workdir_lib.RUN_INFO_NAME}: {info['model_fingerprint']}).")


def _set_precision(config):
  policy = {"": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
  tf_keras.mixed_precision.set_global_policy(policy[config.mixed_precision])


# ---------------------------------------------------------------- steps

def per_example_loss(labels, logits, multi_label: bool):
  """[B, C], [B, C] -> [B]: mean sigmoid BCE over classes, or softmax CE on normalised labels."""
  if multi_label:
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)
  labels = labels / tf.maximum(tf.reduce_sum(labels, axis=-1, keepdims=True), 1e-12)
  return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def make_train_loop(model, optimizer, strategy, step, config):
  """A tf.function running `num_steps` steps on a distributed iterator; returns the mean loss."""
  global_batch = config.batch_size
  clip = config.optimizer.clip_global_norm
  float16 = config.mixed_precision == "float16"

  def train_step(batch):
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    seed = tf.stack([tf.constant(config.seed, tf.int64),
                     step * strategy.num_replicas_in_sync + tf.cast(replica, tf.int64)])
    with tf.GradientTape() as tape:
      logits = model(batch["audio"], training=True, augment_seed=tf.cast(seed % (2**31 - 1),
                                                                         tf.int32))
      loss = tf.reduce_sum(per_example_loss(batch["labels"], logits, model.multi_label))
      loss = loss / global_batch
      if model.losses:
        loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
      scaled = optimizer.get_scaled_loss(loss) if float16 else loss
    variables = model.trainable_variables
    grads = tape.gradient(scaled, variables)
    if float16:
      grads = optimizer.get_unscaled_gradients(grads)
    if clip > 0:
      grads, _ = tf.clip_by_global_norm(grads, clip)
    optimizer.apply_gradients(zip(grads, variables))
    return loss

  @tf.function
  def train_loop(iterator, num_steps):
    total = tf.constant(0.0)
    for _ in tf.range(num_steps):
      loss = strategy.run(train_step, args=(next(iterator),))
      total += strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
      step.assign_add(1)
    return total / tf.cast(num_steps, tf.float32)

  return train_loop


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
  info = input_pipeline.load_dataset_info(data_dir)
  crop_samples = _crop_samples(config, info["sample_rate"])
  crop_scores, clip_scores = make_score_fn(model, crop_samples)
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


# ---------------------------------------------------------------- the loop

def _summaries(results: dict, step: int, writer) -> None:
  with writer.as_default(step=step):
    for name in ("centre_crop", "full_clip"):
      for key in ("mAP", "mAUC", "dprime"):
        if name in results:
          tf.summary.scalar(f"{name}/{key}", results[name][key])


def _frontend_images(model, config) -> dict:
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


def _to_jsonable(results):
  return json.loads(json.dumps(results, default=float))


def train_and_evaluate(config, workdir: str, mode: str = "train_and_eval", tpu: str = "",
                       stop=None) -> dict:
  """Trains (resuming from workdir) and/or evaluates; returns the last eval results.

  A config that builds another model than the workdir's, or data with other classes, is
  refused before anything is written. `stop` (e.g. a preemption.SigtermFlag): when
  `stop.requested` turns true, a checkpoint is saved at the current step and
  preemption.Preempted is raised.
  """
  if mode not in MODES:
    raise ValueError(f"mode={mode!r} is not one of {MODES}")
  validate_config(config)
  info = input_pipeline.load_dataset_info(config.dataset.data_dir)
  check_splits(config, info, mode)
  if config.model.num_classes <= 0:
    config.model.num_classes = len(info["classes"])
  if mode == "eval":
    return _eval_only(workdir, config, info)
  run_info = workdir_lib.read_run_info(workdir) if workdir_lib.has_run_info(workdir) else None
  if run_info:
    workdir_lib.check_data_matches(run_info, info, config.dataset.data_dir, workdir)

  strategy = create_strategy(config.strategy, tpu)
  chief = _is_chief(strategy)
  tf_keras.utils.set_random_seed(config.seed)
  _set_precision(config)

  num_train = info["splits"][config.dataset.train_split]["num_examples"]
  steps_per_epoch = config.steps_per_epoch if config.steps_per_epoch > 0 else max(
      num_train // config.batch_size, 1)
  total_steps = (config.num_train_steps if config.num_train_steps > 0
                 else config.num_epochs * steps_per_epoch)
  num_epochs = math.ceil(total_steps / steps_per_epoch)
  logging.info("%s, %d replicas; %d steps (%d epochs of %d), global batch %d",
               type(strategy).__name__, strategy.num_replicas_in_sync, total_steps, num_epochs,
               steps_per_epoch, config.batch_size)

  with strategy.scope():
    model = build_model(config, info["sample_rate"])
    optimizer, schedule = create_optimizer(config, model, steps_per_epoch, total_steps)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  fingerprint = workdir_lib.model_fingerprint(model)
  if run_info and fingerprint != run_info["model_fingerprint"]:
    raise workdir_lib.RunError(_mismatch_message(workdir, config, fingerprint, run_info))
  checkpoint = _checkpoint(model, optimizer, step)
  manager = tf.train.CheckpointManager(
      checkpoint, _worker_dir(workdir, strategy, "checkpoints"),
      max_to_keep=config.max_checkpoints_to_keep)
  best_manager = tf.train.CheckpointManager(
      checkpoint, _worker_dir(workdir, strategy, "best"), max_to_keep=1)
  saved = checkpoints.in_directory(os.path.join(workdir, checkpoints.CHECKPOINTS_DIR))
  if saved:
    try:
      latest = checkpoints.restore(checkpoint, model, saved,
                                   model_description="the model of the given config")
    except checkpoints.CheckpointMismatchError as e:
      raise workdir_lib.RunError(_mismatch_message(workdir, config, fingerprint, run_info) +
                       f"\n{e}") from None
    logging.info("Resumed from %s at step %d", latest, int(step.numpy()))
  if chief:         # the run has proved it matches the workdir: now it may describe it
    workdir_lib.write_config(workdir, config)
    workdir_lib.write_run_info(
        workdir, classes=info["classes"], sample_rate=info["sample_rate"],
        crop_seconds=config.dataset.crop_seconds, multi_label=config.model.multi_label,
        model_fingerprint=fingerprint)
  best_path = os.path.join(workdir, "best", "best.json")
  best_map = -1.0
  if tf.io.gfile.exists(best_path):
    with tf.io.gfile.GFile(best_path) as f:
      best_map = json.load(f)["mAP"]

  if chief:
    train_writer = tf.summary.create_file_writer(os.path.join(workdir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(workdir, "eval"))
  else:
    train_writer = eval_writer = tf.summary.create_noop_writer()
  train_loop = make_train_loop(model, optimizer, strategy, step, config)
  crop_seconds = config.dataset.crop_seconds

  def dataset_fn(ctx, epoch, skip_steps):
    replicas_per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
    ds = input_pipeline.make_dataset(
        config.dataset.data_dir, config.dataset.train_split,
        batch_size=ctx.get_per_replica_batch_size(config.batch_size), crop_seconds=crop_seconds,
        mode="train", seed=config.seed + epoch, mixup_alpha=config.dataset.mixup_alpha,
        input_context=ctx)
    ds = ds.map(lambda b: {"audio": b["audio"], "labels": b["labels"]})   # no strings on devices
    remaining = min(steps_per_epoch, total_steps - epoch * steps_per_epoch) - skip_steps
    return ds.skip(skip_steps * replicas_per_pipeline).take(remaining * replicas_per_pipeline)

  results = {}
  start_step = int(step.numpy())
  t0, t0_step = time.time(), start_step
  while int(step.numpy()) < total_steps:
    epoch, skip = divmod(int(step.numpy()), steps_per_epoch)
    epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
    iterator = iter(strategy.distribute_datasets_from_function(
        lambda ctx, e=epoch, s=skip: dataset_fn(ctx, e, s)))
    while int(step.numpy()) < epoch_end:
      current = int(step.numpy())
      boundary = min(epoch_end,
                     (current // config.steps_per_loop + 1) * config.steps_per_loop,
                     (current // config.log_every_steps + 1) * config.log_every_steps,
                     (current // config.checkpoint_every_steps + 1) * config.checkpoint_every_steps)
      loss = float(train_loop(iterator, tf.constant(boundary - current)))
      current = int(step.numpy())
      if not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss} at step {current}")
      if current % config.log_every_steps == 0 or current == epoch_end:
        elapsed = time.time() - t0
        steps_per_s = (current - t0_step) / max(elapsed, 1e-9)
        lr = float(schedule(current))
        eta = (total_steps - current) / max(steps_per_s, 1e-9)
        logging.info("step %d/%d  loss %.4f  lr %.3g  %.2f steps/s  %.1f samples/s  ETA %s",
                     current, total_steps, loss, lr, steps_per_s,
                     steps_per_s * config.batch_size, time.strftime("%H:%M:%S", time.gmtime(eta)))
        with train_writer.as_default(step=current):
          tf.summary.scalar("loss", loss)
          tf.summary.scalar("learning_rate", lr)
          tf.summary.scalar("steps_per_second", steps_per_s)
          tf.summary.scalar("samples_per_second", steps_per_s * config.batch_size)
        t0, t0_step = time.time(), current
      if current % config.checkpoint_every_steps == 0 or current == epoch_end:
        manager.save(checkpoint_number=current)
      if stop is not None and stop.requested:
        saved_now = (manager.latest_checkpoint or "").endswith(f"-{current}")
        path = manager.latest_checkpoint if saved_now else manager.save(current)
        train_writer.flush()
        raise preemption.Preempted(current, path)
    # end of an epoch
    current = int(step.numpy())
    last = current == total_steps
    epoch_index = math.ceil(current / steps_per_epoch)
    # Every worker evaluates and saves: under MultiWorkerMirrored, reading the BN
    # statistics (sync-on-read) and saving are collectives all workers must join.
    if mode == "train_and_eval" and (
        last or (config.eval_every_epochs and epoch_index % config.eval_every_epochs == 0)):
      results = evaluate(model, config)
      results["step"] = current
      images = _frontend_images(model, config)
      if chief:
        logging.info("step %d\n%s", current, format_results(results))
        _summaries(results, current, eval_writer)
        with eval_writer.as_default(step=current):
          for name, image in images.items():
            tf.summary.image(name, image)
        _write_json(os.path.join(workdir, "eval_results.json"), _to_jsonable(results))
      if results["centre_crop"]["mAP"] > best_map:
        best_map = results["centre_crop"]["mAP"]
        best_manager.save(checkpoint_number=current)
        if chief:
          _write_json(best_path, {"step": current, "mAP": best_map})
    t0, t0_step = time.time(), current
  if mode == "train" and not tf.train.latest_checkpoint(os.path.join(workdir, "best")):
    best_manager.save(checkpoint_number=int(step.numpy()))   # no eval: best is the last
  if not chief:
    shutil.rmtree(os.path.join(workdir, "tmp_workers"), ignore_errors=True)
  train_writer.flush()
  eval_writer.flush()
  results["final_step"] = int(step.numpy())
  results["param_checksum"] = float(sum(
      np.sum(np.abs(v.numpy().astype(np.float64))) for v in model.trainable_variables))
  logging.info("final step %d param_checksum %.10g", results["final_step"],
               results["param_checksum"])
  return results


def _eval_only(workdir: str, flags_config, dataset_info: dict) -> dict:
  """--mode=eval: the best checkpoint (else the latest) on the eval split.

  The model, classes and crop length are the workdir's; the data (config.dataset,
  eval_batch_size) the given config's, which must have the run's classes.
  """
  run_info = workdir_lib.read_run_info(workdir)
  workdir_lib.check_data_matches(run_info, dataset_info, flags_config.dataset.data_dir, workdir)
  which = "best"                    # falls back to the latest
  model, config = restore_model(workdir, which)
  config.dataset = flags_config.dataset.copy_and_resolve_references()
  config.dataset.crop_seconds = run_info["crop_seconds"]
  config.eval_batch_size = flags_config.eval_batch_size
  results = evaluate(model, config)
  results["random_scores"] = random_score_metrics(config)
  results["checkpoint"] = which
  logging.info("\n%s", format_results(results))
  _write_json(os.path.join(workdir, "eval_results.json"), _to_jsonable(results))
  return results
