"""Training and evaluation of the audio classifier under any tf.distribute strategy.

    train_and_evaluate(config, workdir, mode="train_and_eval")   # the binary's entry point

One file per role: validation.py (config and data checks, num_classes), strategy.py,
optimizer.py (AdamW + schedule), checkpoints.py (resolve / restore, shared with export),
evaluation.py; this file holds the loop.

Workdir layout (export and eval rebuild a run from it; train/workdir.py reads and writes it):
    config.json            the run's ConfigDict, num_classes resolved (written once the run
                           has proved it matches the workdir)
    run_info.json          classes, sample rate, crop length, model fingerprint
    checkpoints/           tf.train.CheckpointManager of Checkpoint(model, optimizer, step)
    best/                  the same objects at the best eval mAP (multiclass: accuracy; centre
                           crops) + best.json
    eval_results.json      the latest evaluation (centre crop and full clip), strict JSON
    .lock                  while a trainer runs: who it is (workdir.lock)
    train/, eval/          TensorBoard logs

Resuming: a restarted run restores checkpoints/ and continues. Each epoch reads a
dataset seeded with (seed + epoch) and skips the batches it already trained on,
and SpecAugment masks are stateless functions of (seed, step), so a run killed and
restarted ends with the weights of an unkilled one (up to the stateful RNG of
dropout / stochastic depth, which restart with the process).
"""
import contextlib
import functools
import json
import math
import os
import shutil
import time

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from train import checkpoints
from train import evaluation
from train import metrics as metrics_lib
from train import models
from train import optimizer as optimizer_lib
from train import preemption
from train import strategy as strategy_lib
from train import validation
from train import workdir as workdir_lib
from train.data import dataset_info
from train.data import input_pipeline


def _mismatch_message(workdir: str, config, fingerprint: str, run_info) -> str:
  trained = run_info["model_fingerprint"] if run_info else "that of its checkpoints"
  return (f"The given config does not match workdir {workdir}: it builds another model "
          f"(fingerprint {fingerprint}, the workdir's {trained}). Differences:\n"
          f"{workdir_lib.config_difference(workdir, config)}\n"
          "Nothing was written. Train this config in a new --workdir, or pass the workdir's "
          "own config.")


def per_example_loss(labels, logits, multi_label: bool):
  """[B, C], [B, C] -> [B]: mean sigmoid BCE over classes, or softmax CE on normalised labels."""
  if multi_label:
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)
  labels = labels / tf.maximum(tf.reduce_sum(labels, axis=-1, keepdims=True), 1e-12)
  return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def make_train_loop(model, optimizer, strategy, step, config, jit_compile=None):
  """A tf.function running `num_steps` steps on a distributed iterator; returns the mean loss.

  jit_compile (default config.jit_compile): each replica's forward and backward pass (loss
  scaling and clipping included) is one XLA computation. apply_gradients stays outside it:
  its cross-replica sum cannot sit inside a per-replica XLA function under MirroredStrategy
  (2 logical CPUs: a replica's variables read from another device), and tf_keras' AdamW
  compiles its own update where a GPU is present. TPUStrategy compiles everything anyway.
  """
  jit_compile = config.jit_compile if jit_compile is None else jit_compile
  global_batch = config.batch_size
  clip = config.optimizer.clip_global_norm
  float16 = config.mixed_precision == "float16"

  def gradients(batch):
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
    return loss, grads

  if jit_compile:
    gradients = tf.function(gradients, jit_compile=True)

  def train_step(batch):
    loss, grads = gradients(batch)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
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


def _schedule_lengths(config, info: dict):
  """(steps_per_epoch, total_steps, num_epochs) of the run."""
  num_train = info["splits"][config.dataset.train_split]["num_examples"]
  steps_per_epoch = config.steps_per_epoch if config.steps_per_epoch > 0 else max(
      num_train // config.batch_size, 1)
  total_steps = (config.num_train_steps if config.num_train_steps > 0
                 else config.num_epochs * steps_per_epoch)
  return steps_per_epoch, total_steps, math.ceil(total_steps / steps_per_epoch)


def _resume(workdir, config, checkpoint, model, fingerprint, run_info) -> None:
  """Restores WORKDIR/checkpoints' latest (if any) into checkpoint; RunError on a mismatch."""
  saved = checkpoints.in_directory(os.path.join(workdir, checkpoints.CHECKPOINTS_DIR))
  if not saved:
    return
  try:
    latest = checkpoints.restore(checkpoint, model, saved,
                                 model_description="the model of the given config")
  except checkpoints.CheckpointMismatchError as e:
    raise workdir_lib.RunError(_mismatch_message(workdir, config, fingerprint, run_info) +
                               f"\n{e}") from None
  logging.info("Resumed from %s at step %d", latest, int(checkpoint.step.numpy()))


def _log_progress(writer, config, current, total_steps, loss, lr, steps_per_s) -> None:
  eta = (total_steps - current) / max(steps_per_s, 1e-9)
  logging.info("step %d/%d  loss %.4f  lr %.3g  %.2f steps/s  %.1f samples/s  ETA %s",
               current, total_steps, loss, lr, steps_per_s, steps_per_s * config.batch_size,
               time.strftime("%H:%M:%S", time.gmtime(eta)))
  with writer.as_default(step=current):
    tf.summary.scalar("loss", loss)
    tf.summary.scalar("learning_rate", lr)
    tf.summary.scalar("steps_per_second", steps_per_s)
    tf.summary.scalar("samples_per_second", steps_per_s * config.batch_size)


def _make_dataset_fn(config, steps_per_epoch: int, total_steps: int):
  """(ctx, epoch, skip_steps) -> the per-pipeline dataset of an epoch's remaining steps."""
  def dataset_fn(ctx, epoch, skip_steps):
    replicas_per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
    ds = input_pipeline.make_dataset(
        config.dataset.data_dir, config.dataset.train_split,
        batch_size=ctx.get_per_replica_batch_size(config.batch_size),
        crop_seconds=config.dataset.crop_seconds, mode="train", seed=config.seed + epoch,
        mixup_alpha=config.dataset.mixup_alpha, input_context=ctx)
    ds = ds.map(lambda b: {"audio": b["audio"], "labels": b["labels"]})   # no strings on devices
    remaining = min(steps_per_epoch, total_steps - epoch * steps_per_epoch) - skip_steps
    return ds.skip(skip_steps * replicas_per_pipeline).take(remaining * replicas_per_pipeline)
  return dataset_fn


def _evaluate_and_keep_best(model, config, workdir, step, strategy, chief, eval_writer,
                            best_manager, best_map: float):
  """Evaluates under the strategy, logs and writes the results; saves best/ on a new best.
  -> (results, best_map)"""
  results = evaluation.evaluate(model, config, strategy=strategy)
  results["step"] = step
  images = evaluation.frontend_images(model, config)
  if chief:
    logging.info("step %d: %s", step, evaluation.summary_line(results))
    evaluation.write_summaries(results, step, eval_writer)
    with eval_writer.as_default(step=step):
      for name, image in images.items():
        tf.summary.image(name, image)
    evaluation.write_results(workdir, results)
  metric = metrics_lib.SELECTION_METRIC[config.model.type]
  if results["centre_crop"][metric] > best_map:
    best_map = results["centre_crop"][metric]
    best_manager.save(checkpoint_number=step)
    if chief:
      checkpoints.write_best(workdir, step, best_map, metric)
  return results, best_map


def _read_results(workdir: str) -> dict:
  """WORKDIR/eval_results.json as evaluation returned it (a metric written as null, being not
  finite, comes back as NaN); {} when there is none or it is unreadable."""
  try:
    with tf.io.gfile.GFile(os.path.join(workdir, evaluation.RESULTS_NAME)) as f:
      results = json.load(f, object_hook=lambda d: {k: math.nan if v is None else v
                                                    for k, v in d.items()})
  except (tf.errors.NotFoundError, ValueError):
    return {}
  return results if isinstance(results, dict) else {}


def _evaluated_step(results: dict) -> int:
  """The training step eval results are of; -1 if none (--mode=eval's are of best/)."""
  step = results.get("step", -1)
  return step if isinstance(step, int) else -1


def _remove_worker_dir(workdir: str, strategy) -> None:
  """A non-chief worker's throw-away folder, and WORKDIR/tmp_workers once empty."""
  shutil.rmtree(strategy_lib.worker_dir(workdir, strategy, ""), ignore_errors=True)
  with contextlib.suppress(OSError):
    os.rmdir(os.path.join(workdir, strategy_lib.WORKER_TMP_DIR))


def _check_workdir_path(workdir: str) -> None:
  if tf.io.gfile.exists(workdir) and not tf.io.gfile.isdir(workdir):
    raise workdir_lib.RunError(f"--workdir {workdir} is a file, not a folder: pass a new "
                               "folder or a training workdir.")


def _read_run_info(workdir: str):
  """run_info.json, or None when there is none or it is corrupt: a corrupt one is rewritten
  once the checkpoints prove they hold the given config's model."""
  if not workdir_lib.has_run_info(workdir):
    return None
  try:
    return workdir_lib.read_run_info(workdir)
  except workdir_lib.CorruptFileError as e:
    logging.warning("%s It is rewritten once the checkpoints are restored.", e)
    return None


def train_and_evaluate(config, workdir: str, mode: str = "train_and_eval", tpu: str = "",
                       stop=None) -> dict:
  """Trains (resuming from workdir) and/or evaluates; returns the last eval results.

  A config that builds another model than the workdir's, or data with other classes, is
  refused before anything is written. The caller's config is not changed (the run's copy
  gets num_classes from the data). The workdir is locked for the run (workdir.lock; a
  non-chief worker locks its own folder in it). `stop` (a preemption.StopSignals): when
  `stop.requested` turns true during training steps, a checkpoint is saved at the current
  step and preemption.Preempted is raised. In train_and_eval mode the final evaluation runs
  whenever eval_results.json is older than the last checkpoint, also when the training is
  already complete (a run killed while evaluating).
  """
  if mode not in validation.MODES:
    raise ValueError(f"mode={mode!r} is not one of {validation.MODES}")
  validation.validate_config(config)
  _check_workdir_path(workdir)
  info = dataset_info.read(config.dataset.data_dir)
  validation.check_splits(config, info, mode)
  strategy = strategy_lib.create_strategy(config.strategy, tpu)
  chief = strategy_lib.is_chief(strategy)
  # After the strategy (reading records starts TensorFlow's runtime, and multi-worker
  # collectives must be configured before that), still before anything is written.
  input_pipeline.check_data(config.dataset.data_dir, info, validation.splits_read(config, mode))
  validation.check_single_label(config, info, mode)
  if mode == "eval":                # every worker scores its share; the chief writes
    with (workdir_lib.lock(workdir, "train.main --mode=eval") if chief
          else contextlib.nullcontext()):
      return evaluation.evaluate_workdir(workdir, config, strategy=strategy)
  config = validation.resolved_config(config, info)
  run_info = _read_run_info(workdir)
  if run_info:
    workdir_lib.check_data_matches(run_info, info, config.dataset.data_dir, workdir)

  # Non-chief workers write only their own throw-away folder: they lock that one.
  lock_dir = workdir if chief else strategy_lib.worker_dir(workdir, strategy, "")
  with workdir_lib.lock(lock_dir, f"train.main --mode={mode}"):
    results = _train(config, workdir, mode, strategy, chief, info, run_info,
                     stop or preemption.StopSignals())
  if not chief:
    _remove_worker_dir(workdir, strategy)
  return results


def _train(config, workdir, mode, strategy, chief, info, run_info, stop) -> dict:
  """train_and_evaluate once the workdir is locked."""
  tf_keras.utils.set_random_seed(config.seed)
  steps_per_epoch, total_steps, num_epochs = _schedule_lengths(config, info)
  logging.info("%s, %d replicas; %d steps (%d epochs of %d), global batch %d",
               type(strategy).__name__, strategy.num_replicas_in_sync, total_steps, num_epochs,
               steps_per_epoch, config.batch_size)

  with strategy.scope():
    model = models.build_model(config, info["sample_rate"])
    dataset_info.check_frontend_rate(model.frontend.sample_rate, info, config.dataset.data_dir)
    optimizer, schedule = optimizer_lib.create_optimizer(config, model, steps_per_epoch,
                                                         total_steps)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  fingerprint = workdir_lib.model_fingerprint(model)
  if run_info and fingerprint != run_info["model_fingerprint"]:
    raise workdir_lib.RunError(_mismatch_message(workdir, config, fingerprint, run_info))
  if run_info and run_info["multi_label"] != (config.model.type == "multilabel"):
    raise workdir_lib.RunError(
        f"config.model.type={config.model.type!r}, but workdir {workdir} trained a "
        f"{'multilabel' if run_info['multi_label'] else 'multiclass'} model. Nothing was "
        "written. Train this config in a new --workdir.")
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  directories = [strategy_lib.worker_dir(workdir, strategy, name)
                 for name in (checkpoints.CHECKPOINTS_DIR, checkpoints.BEST_DIR)]
  for directory in directories:      # before a CheckpointManager reads its index
    for path in checkpoints.remove_partial_saves(directory):
      logging.info("Removed %s, left by a save that was killed.", path)
    checkpoints.restore_index(directory)
  manager = tf.train.CheckpointManager(checkpoint, directories[0],
                                       max_to_keep=config.max_checkpoints_to_keep)
  best_manager = tf.train.CheckpointManager(checkpoint, directories[1], max_to_keep=1)
  _resume(workdir, config, checkpoint, model, fingerprint, run_info)
  if int(step.numpy()) > total_steps:
    raise workdir_lib.RunError(
        f"Workdir {workdir} has trained {int(step.numpy())} steps, more than the {total_steps} "
        "the config asks for (num_train_steps, or num_epochs x steps_per_epoch). Nothing was "
        "written. Pass at least as many steps to continue it, or use a new --workdir.")
  if chief:         # the run has proved it matches the workdir: now it may describe it
    workdir_lib.write_config(workdir, config)
    workdir_lib.write_run_info(
        workdir, classes=info["classes"], sample_rate=info["sample_rate"],
        crop_seconds=config.dataset.crop_seconds,
        multi_label=config.model.type == "multilabel",
        model_fingerprint=fingerprint)
  best_map = checkpoints.read_best_map(workdir, metrics_lib.SELECTION_METRIC[config.model.type])
  # Read before this run evaluates, so that every worker decides the same.
  evaluated_step = _evaluated_step(_read_results(workdir))

  if chief:
    train_writer = tf.summary.create_file_writer(os.path.join(workdir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(workdir, "eval"))
  else:
    train_writer = eval_writer = tf.summary.create_noop_writer()
  train_loop = make_train_loop(model, optimizer, strategy, step, config)
  dataset_fn = _make_dataset_fn(config, steps_per_epoch, total_steps)
  evaluate = functools.partial(_evaluate_and_keep_best, model, config, workdir,
                               strategy=strategy, chief=chief, eval_writer=eval_writer,
                               best_manager=best_manager)

  results = {}
  t0, t0_step = time.time(), int(step.numpy())
  while int(step.numpy()) < total_steps:
    epoch, skip = divmod(int(step.numpy()), steps_per_epoch)
    epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
    with stop.deferred():
      iterator = iter(strategy.distribute_datasets_from_function(
          lambda ctx, e=epoch, s=skip: dataset_fn(ctx, e, s)))
      while int(step.numpy()) < epoch_end:
        current = int(step.numpy())
        boundary = min(epoch_end,
                       (current // config.steps_per_loop + 1) * config.steps_per_loop,
                       (current // config.log_every_steps + 1) * config.log_every_steps,
                       (current // config.checkpoint_every_steps + 1) *
                       config.checkpoint_every_steps)
        loss = float(train_loop(iterator, tf.constant(boundary - current)))
        current = int(step.numpy())
        if not math.isfinite(loss):
          raise FloatingPointError(f"loss is {loss} at step {current}")
        if current % config.log_every_steps == 0 or current == epoch_end:
          steps_per_s = (current - t0_step) / max(time.time() - t0, 1e-9)
          _log_progress(train_writer, config, current, total_steps, loss,
                        float(schedule(current)), steps_per_s)
          t0, t0_step = time.time(), current
        if current % config.checkpoint_every_steps == 0 or current == epoch_end:
          manager.save(checkpoint_number=current)
        if stop.requested:
          break
    # A signal during the steps (or after the last check, the epoch's end saved).
    if stop.requested:
      current = int(step.numpy())
      saved_now = (manager.latest_checkpoint or "").endswith(f"-{current}")
      path = manager.latest_checkpoint if saved_now else manager.save(current)
      train_writer.flush()
      raise preemption.Preempted(current, path, stop.signum)
    # end of an epoch
    current = int(step.numpy())
    epoch_index = math.ceil(current / steps_per_epoch)
    # Every worker evaluates and saves: under MultiWorkerMirrored, reading the BN
    # statistics (sync-on-read) and saving are collectives all workers must join.
    if mode == "train_and_eval" and (current == total_steps or (
        config.eval_every_epochs and epoch_index % config.eval_every_epochs == 0)):
      results, best_map = evaluate(current, best_map=best_map)
      evaluated_step = current
    t0, t0_step = time.time(), current
  final_step = int(step.numpy())
  if mode == "train_and_eval":
    if evaluated_step < final_step:         # e.g. killed during the final evaluation
      logging.info("The last evaluation (%s) is older than the checkpoint at step %d: "
                   "evaluating it.", f"step {evaluated_step}" if evaluated_step >= 0 else
                   "none", final_step)
      results, best_map = evaluate(final_step, best_map=best_map)
    elif not results:                       # a rerun of a complete run: its results
      logging.info("%s is of step %d, the last checkpoint's: not evaluating again.",
                   os.path.join(workdir, evaluation.RESULTS_NAME), final_step)
      results = _read_results(workdir)
  if mode == "train" and not checkpoints.in_directory(directories[1]):
    best_manager.save(checkpoint_number=final_step)   # no eval: best is the last
  train_writer.flush()
  eval_writer.flush()
  results["final_step"] = final_step
  results["param_checksum"] = float(sum(
      np.sum(np.abs(v.numpy().astype(np.float64))) for v in model.trainable_variables))
  logging.info("final step %d param_checksum %.10g", results["final_step"],
               results["param_checksum"])
  return results
