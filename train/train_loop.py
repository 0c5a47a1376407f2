"""Training of the audio classifier under any tf.distribute strategy, read top to bottom.

    make_train_loop(...)                     a tf.function running N train steps: on each
                                             replica loss_and_gradients, apply_gradients
    create_train_state(...)                  model, optimizer, step and checkpoints, resumed
    train_and_evaluate(config, workdir)      the binary's train / train_and_eval modes

One file per role: validation.py (checks, the strategy), optimizer.py (AdamW + schedule),
checkpoints.py (restore, shared with export), evaluation.py (--mode=eval too), workdir.py (every
file of the run: train/workdir.py's module doc lists them); this file holds the loop.

Resuming: a restarted run restores checkpoints/ and continues. Each epoch reads a dataset
seeded with (seed + epoch) and skips the batches it already trained on, and SpecAugment masks
are stateless functions of (seed, step), so a run killed and restarted ends with the weights of
an unkilled one (up to the stateful RNG of dropout / stochastic depth, which restart with the
process).
"""
import dataclasses
import math
import time

from absl import logging
import tensorflow as tf
import tf_keras

from train import checkpoints
from train import evaluation
from train import fingerprint as fingerprint_lib
from train import metrics as metrics_lib
from train import models
from train import optimizer as optimizer_lib
from train import preemption
from train import strategy as strategy_lib
from train import validation
from train.data import dataset_info
from train.data import input_pipeline
from train.errors import RunError


@dataclasses.dataclass
class TrainState:
  """What a step changes and a checkpoint holds, and where checkpoints go."""
  model: tf_keras.Model
  optimizer: tf_keras.optimizers.Optimizer
  schedule: object                            # step -> learning rate
  step: tf.Variable                           # int64, the steps done
  checkpoint: tf.train.Checkpoint             # of model, optimizer and step
  latest: tf.train.CheckpointManager = None   # checkpoints/ (this worker's)
  best: tf.train.CheckpointManager = None     # best/

  @property
  def current(self) -> int:
    return int(self.step.numpy())


def per_example_loss(labels, logits, multi_label: bool):
  """[B, C], [B, C] -> [B]: mean sigmoid BCE over classes, or softmax CE on normalised labels."""
  if multi_label:
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)
  labels = labels / tf.maximum(tf.reduce_sum(labels, axis=-1, keepdims=True), 1e-12)
  return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def loss_and_gradients(model, optimizer, batch, step, config, num_replicas: int):
  """One replica's share of the global-batch mean loss and its gradients (loss scaling and
  clipping done). SpecAugment's seed is a function of (config.seed, step, replica)."""
  replica = tf.distribute.get_replica_context().replica_id_in_sync_group
  seed = tf.stack([tf.constant(config.seed, tf.int64),
                   step * num_replicas + tf.cast(replica, tf.int64)])
  with tf.GradientTape() as tape:
    logits = model(batch["audio"], training=True,
                   augment_seed=tf.cast(seed % (2**31 - 1), tf.int32))
    loss = tf.reduce_sum(per_example_loss(batch["labels"], logits, model.multi_label))
    loss = loss / config.batch_size
    if model.losses:
      loss += tf.add_n(model.losses) / num_replicas
    float16 = config.mixed_precision == "float16"
    scaled = optimizer.get_scaled_loss(loss) if float16 else loss
  grads = tape.gradient(scaled, model.trainable_variables)
  if float16:
    grads = optimizer.get_unscaled_gradients(grads)
  if config.optimizer.clip_global_norm > 0:
    grads, _ = tf.clip_by_global_norm(grads, config.optimizer.clip_global_norm)
  return loss, grads


def make_train_loop(model, optimizer, strategy, step, config, jit_compile=None):
  """A tf.function (distributed iterator, num_steps) -> the mean loss of num_steps train steps.

  A train step, on each replica: loss_and_gradients, then apply_gradients. jit_compile
  (default config.jit_compile): loss_and_gradients is one XLA computation per replica.
  apply_gradients stays outside it: its cross-replica sum cannot sit inside a per-replica XLA
  function under MirroredStrategy (2 logical CPUs: a replica's variables read from another
  device), and tf_keras' AdamW compiles its own update where a GPU is present. TPUStrategy
  compiles everything anyway.
  """
  jit_compile = config.jit_compile if jit_compile is None else jit_compile

  def gradients(batch):
    return loss_and_gradients(model, optimizer, batch, step, config,
                              strategy.num_replicas_in_sync)

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


def create_train_state(config, info, strategy, steps_per_epoch: int,
                       total_steps: int) -> TrainState:
  """The model, optimizer and step (0) under the strategy; no checkpoint managers yet."""
  with strategy.scope():
    model = models.build_model(config, info["sample_rate"])
    dataset_info.check_frontend_rate(model.frontend.sample_rate, info, config.dataset.data_dir)
    optimizer, schedule = optimizer_lib.create_optimizer(config, model, steps_per_epoch,
                                                         total_steps)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  return TrainState(model, optimizer, schedule, step,
                    tf.train.Checkpoint(model=model, optimizer=optimizer, step=step))


def resume(state, saved) -> None:
  """Restores the newest readable of the `saved` checkpoints (if any) into state;
  CheckpointMismatchError when they hold another model."""
  if saved:
    path = checkpoints.restore(state.checkpoint, state.model, saved,
                               model_description="the model of the given config")
    logging.info("Resumed from %s at step %d", path, state.current)


def _epoch_dataset(config, strategy, epoch: int, skip_steps: int, steps_per_epoch: int,
                   total_steps: int):
  """The distributed dataset of an epoch's remaining steps (seeded by seed + epoch)."""
  def dataset_fn(ctx):
    replicas_per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
    ds = input_pipeline.make_dataset(
        config.dataset.data_dir, config.dataset.train_split,
        batch_size=ctx.get_per_replica_batch_size(config.batch_size),
        crop_seconds=config.dataset.crop_seconds, mode="train", seed=config.seed + epoch,
        mixup_alpha=config.dataset.mixup_alpha, input_context=ctx)
    ds = ds.map(lambda b: {"audio": b["audio"], "labels": b["labels"]})   # no strings on devices
    remaining = min(steps_per_epoch, total_steps - epoch * steps_per_epoch) - skip_steps
    return ds.skip(skip_steps * replicas_per_pipeline).take(remaining * replicas_per_pipeline)
  return strategy.distribute_datasets_from_function(dataset_fn)


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


def train_epoch(state, train_loop, make_iterator, epoch_end: int, total_steps: int, config,
                stop, agreement, writer) -> None:
  """Runs the steps up to epoch_end in chunks that end on every log, checkpoint and
  steps_per_loop boundary; logs, saves. On a stop request (SIGTERM / Ctrl-C) to this worker or
  to any other (`agreement`, a preemption.Agreement) every worker saves the step reached and
  raises preemption.Preempted."""
  t0, t0_step = time.time(), state.current
  stopping = False
  with stop.deferred():
    iterator = make_iterator()
    while state.current < epoch_end and not stopping:
      current = state.current
      boundary = min(epoch_end, *[(current // every + 1) * every for every in (
          config.steps_per_loop, config.log_every_steps, config.checkpoint_every_steps)])
      loss = float(train_loop(iterator, tf.constant(boundary - current)))
      current = state.current
      if not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss} at step {current}")
      if current % config.log_every_steps == 0 or current == epoch_end:
        steps_per_s = (current - t0_step) / max(time.time() - t0, 1e-9)
        _log_progress(writer, config, current, total_steps, loss,
                      float(state.schedule(current)), steps_per_s)
        t0, t0_step = time.time(), current
      if current % config.checkpoint_every_steps == 0 or current == epoch_end:
        state.latest.save(checkpoint_number=current)
      stopping = agreement.any(stop.requested)
    if not stopping:      # a signal after the last check (the epoch's end saved)
      stopping = agreement.any(stop.requested)
  if stopping:
    current = state.current
    saved = (state.latest.latest_checkpoint or "").endswith(f"-{current}")
    path = state.latest.latest_checkpoint if saved else state.latest.save(current)
    writer.flush()
    raise preemption.Preempted(current, path, stop.signum)


def evaluate_and_keep_best(state, config, strategy, writer, best_value: float):
  """Evaluates under the strategy (every worker: reading BN statistics and saving are
  collectives), logs the results; saves best/ on a new best.
  -> (results, (step, value, metric) of a new best or None, best value)"""
  step = state.current
  results = evaluation.evaluate(state.model, config, strategy=strategy)
  results["step"] = step
  images = evaluation.frontend_images(state.model, config)
  if strategy_lib.is_chief(strategy):
    logging.info("step %d: %s", step, evaluation.summary_line(results))
  evaluation.write_summaries(results, step, writer)      # a no-op writer on other workers
  with writer.as_default(step=step):
    for name, image in images.items():
      tf.summary.image(name, image)
  metric = metrics_lib.SELECTION_METRIC[config.model.type]
  if results["centre_crop"][metric] <= best_value:
    return results, None, best_value
  state.best.save(checkpoint_number=step)
  return results, (step, results["centre_crop"][metric], metric), results["centre_crop"][metric]


def train_and_evaluate(config, workdir: str, mode: str = "train_and_eval", tpu: str = "",
                       stop=None) -> dict:
  """Trains (resuming from workdir), evaluating after epochs in train_and_eval mode; returns
  the last eval results and "final_step". (--mode=eval: evaluation.evaluate_run.)

  A config that builds another model than the workdir's, or data with other classes, is
  refused before anything is written; the caller's config is not changed (the run's copy gets
  num_classes from the data). The workdir is locked for the run (a non-chief worker locks its
  own folder in it). `stop` (a preemption.StopSignals): when `stop.requested` turns true
  during training steps, a checkpoint is saved at the step reached and preemption.Preempted
  raised. In train_and_eval mode the final evaluation runs whenever eval_results.json is older
  than the last checkpoint, also when the training is already complete (a run killed while
  evaluating).
  """
  if mode not in ("train", "train_and_eval"):
    raise ValueError(f"mode={mode!r}: train_and_evaluate trains ('train' or 'train_and_eval'); "
                     "--mode=eval is evaluation.evaluate_run")
  workdir, info, strategy = validation.prepare_run(config, workdir, mode, tpu)
  config = validation.resolved_config(config, info)
  run_info = workdir.sound_run_info()
  if run_info:
    workdir.check_data_matches(run_info, info, config.dataset.data_dir)
  stop = stop or preemption.StopSignals()
  evaluating = mode == "train_and_eval"
  with workdir.lock(f"train.main --mode={mode}"):
    tf_keras.utils.set_random_seed(config.seed)
    steps_per_epoch, total_steps, num_epochs = _schedule_lengths(config, info)
    logging.info("%s, %d replicas; %d steps (%d epochs of %d), global batch %d",
                 type(strategy).__name__, strategy.num_replicas_in_sync, total_steps,
                 num_epochs, steps_per_epoch, config.batch_size)
    state = create_train_state(config, info, strategy, steps_per_epoch, total_steps)
    fingerprint = fingerprint_lib.model_fingerprint(state.model)
    workdir.check_model(config, fingerprint, run_info)
    saving_dirs, run_checkpoints = workdir.saving_dirs(), workdir.checkpoints_dir
    state.latest, state.best = checkpoints.managers(state.checkpoint, saving_dirs,
                                                    config.max_checkpoints_to_keep)
    try:        # from the run's checkpoints/ on every worker
      resume(state, checkpoints.in_directory(run_checkpoints))
    except checkpoints.CheckpointMismatchError as e:
      raise workdir.model_mismatch(config, fingerprint, run_info, str(e)) from None
    if state.current > total_steps:
      raise RunError(
          f"Workdir {workdir} has trained {state.current} steps, more than the {total_steps} "
          "the config asks for (num_train_steps, or num_epochs x steps_per_epoch). Nothing "
          "was written. Pass at least as many steps to continue it, or use a new --workdir.")
    best = workdir.read_best(metrics_lib.SELECTION_METRIC[config.model.type])
    # Read before this run evaluates, so that every worker decides the same.
    evaluated_step = workdir.read_eval_results().get("step", -1)
    evaluated_step = evaluated_step if isinstance(evaluated_step, int) else -1
    train_writer, eval_writer = workdir.summary_writer("train"), workdir.summary_writer("eval")
    # the run has proved it matches the workdir: now it may describe it
    workdir.describe(config, classes=info["classes"], sample_rate=info["sample_rate"],
                     crop_seconds=config.dataset.crop_seconds,
                     multi_label=config.model.type == "multilabel",
                     model_fingerprint=fingerprint)
    train_loop = make_train_loop(state.model, state.optimizer, strategy, state.step, config)
    agreement = preemption.Agreement(strategy)
    results = {}
    while state.current < total_steps:
      epoch, skip = divmod(state.current, steps_per_epoch)
      epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
      make_iterator = lambda e=epoch, s=skip: iter(_epoch_dataset(
          config, strategy, e, s, steps_per_epoch, total_steps))
      train_epoch(state, train_loop, make_iterator, epoch_end, total_steps, config, stop,
                  agreement, train_writer)
      if evaluating and (state.current == total_steps or (
          config.eval_every_epochs and (epoch + 1) % config.eval_every_epochs == 0)):
        results, new_best, best = evaluate_and_keep_best(state, config, strategy, eval_writer,
                                                         best)
        workdir.record_evaluation(results, new_best)
        evaluated_step = state.current
    if evaluating and evaluated_step < state.current:    # e.g. killed in the final evaluation
      logging.info("The last evaluation (%s) is older than the checkpoint at step %d: "
                   "evaluating it.", f"step {evaluated_step}" if evaluated_step >= 0 else
                   "none", state.current)
      results, new_best, best = evaluate_and_keep_best(state, config, strategy, eval_writer,
                                                       best)
      workdir.record_evaluation(results, new_best)
    elif evaluating and not results:                     # a rerun of a complete run
      logging.info("%s is of step %d, the last checkpoint's: not evaluating again.",
                   workdir.eval_results_path, state.current)
      results = workdir.read_eval_results()
    if mode == "train" and not state.best.checkpoints:
      state.best.save(checkpoint_number=state.current)   # no eval: best is the last
    train_writer.flush()
    eval_writer.flush()
  logging.info("final step %d", state.current)
  return {**results, "final_step": state.current}
