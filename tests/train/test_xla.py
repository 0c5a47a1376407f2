"""config.jit_compile: the trainer's step compiled with XLA (what TPUs require) gives the
numbers of the step without XLA, for every frontend family, and is traced once per run.

Both runs start from the same weights and see the same batches; SpecAugment is on (its masks
are stateless functions of the step, equal with and without XLA). Dropout and stochastic
depth are off in the tiny config: their stateful random draws differ between the two.
"""
import numpy as np
import pytest
import tensorflow as tf

from tests.harness import NUM_CLASSES, tiny_config
from train import models
from train import optimizer as optimizer_lib
from train import spec_augment
from train import train_loop

# Calls of the loop and their steps: one step, then two in one call (3 batches in all).
CALLS = (1, 2)
# Float32 reordering under XLA moved the losses 8e-7..4e-6 and the weights 6e-9 (SincNet)
# ..9e-7 (mel) on the tiny config; a real difference (another op, a lost gradient) moves both
# by orders of magnitude more.
TOLERANCE = 1e-5
# EfficientLEAF's features already differ ~3e-6 with and without XLA (LEAF's 4e-7, mel's
# 5e-8): its log1p + median + temporal batch norm amplify float32 reordering, and its weights
# differed 7e-6 or 2.2e-5 after the two steps, depending on the initial weights.
WEIGHT_TOLERANCES = {"efficientleaf": 5e-5}


def _batches(config, count):
  rng = np.random.default_rng(1)
  samples = int(config.dataset.crop_seconds * 16000)
  return {"audio": rng.uniform(-0.5, 0.5, (count, config.batch_size, samples)).astype(np.float32),
          "labels": (rng.random((count, config.batch_size, NUM_CLASSES)) < 0.4).astype(np.float32)}


def _train(config, weights, jit_compile):
  """-> (loss of each call, trainable weights after the calls, tracing count of the loop)."""
  model = models.build_model(config)
  model.set_weights(weights)
  optimizer, _ = optimizer_lib.create_optimizer(config, model, steps_per_epoch=10,
                                                total_steps=100)
  optimizer.build(model.trainable_variables)    # as the trainer does: no variable made in a trace
  step = tf.Variable(0, dtype=tf.int64)
  strategy = tf.distribute.get_strategy()
  dataset = tf.data.Dataset.from_tensor_slices(_batches(config, sum(CALLS)))
  iterator = iter(strategy.experimental_distribute_dataset(dataset))
  loop = train_loop.make_train_loop(model, optimizer, strategy, step, config,
                                    jit_compile=jit_compile)
  losses = [float(loop(iterator, tf.constant(steps))) for steps in CALLS]
  assert int(step.numpy()) == sum(CALLS)
  return (np.array(losses), [v.numpy() for v in model.trainable_variables],
          loop.experimental_get_tracing_count())


def _relative(a, b):
  """||a - b|| / ||a|| over every weight of the model at once."""
  a = np.concatenate([w.ravel() for w in a]).astype(np.float64)
  b = np.concatenate([w.ravel() for w in b]).astype(np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(a)


def _config(data_dir, frontend, mixed_precision=""):
  config = tiny_config(data_dir, frontend)
  config.model.num_classes = NUM_CLASSES
  config.optimizer.warmup_epochs = 0.0      # every step moves the weights
  config.mixed_precision = mixed_precision
  return config


@pytest.mark.parametrize("frontend", ["mel", "leaf", "sincnet", "efficientleaf"])
def test_xla_step_equals_the_step_without_xla(frontend, data_dir):
  config = _config(data_dir, frontend)
  initial = models.build_model(config).get_weights()
  losses, weights, traces = _train(config, initial, jit_compile=False)
  assert traces == 1
  xla_losses, xla_weights, traces = _train(config, initial, jit_compile=True)
  assert traces == 1, f"the XLA train loop was traced {traces} times over {len(CALLS)} calls"
  np.testing.assert_allclose(xla_losses, losses, rtol=TOLERANCE)
  difference = _relative(weights, xla_weights)
  assert difference <= WEIGHT_TOLERANCES.get(frontend, TOLERANCE)
  # the steps did train, by far more than the two runs disagree
  start = models.build_model(config)
  start.set_weights(initial)
  assert _relative(weights, [v.numpy() for v in start.trainable_variables]) > 10 * difference


def test_mixed_bfloat16_under_xla(data_dir):
  """The bfloat16 policy (frontend float32) compiles and trains like float32 up to bfloat16
  rounding. Compared with the float32 step: on CPU the bfloat16 step without XLA turned a
  backbone weight NaN in this run (2026-12-06), the XLA one did not."""
  config = _config(data_dir, "leaf")
  initial = models.build_model(config).get_weights()
  losses, _, _ = _train(config, initial, jit_compile=False)
  config.mixed_precision = "bfloat16"
  xla_losses, xla_weights, traces = _train(config, initial, jit_compile=True)
  assert traces == 1
  assert all(w.dtype == np.float32 and np.isfinite(w).all() for w in xla_weights)
  # bfloat16 keeps 8 bits of mantissa (~4e-3 per op)
  np.testing.assert_allclose(xla_losses, losses, rtol=5e-2)


def test_spec_augment_masks_equal_under_xla():
  seed = tf.constant([7, 11], tf.int32)
  # the uniform the masks were drawn with before XLA parity: the same bits
  np.testing.assert_array_equal(spec_augment._uniform([64], seed),   # pylint: disable=protected-access
                                tf.random.stateless_uniform([64], seed))
  layer = spec_augment.SpecAugment(max_freq_width=4, max_time_width=10)
  features = tf.ones([4, 50, 16])
  masked = layer(features, training=True, seed=seed)
  xla = tf.function(lambda x: layer(x, training=True, seed=seed), jit_compile=True)(features)
  np.testing.assert_array_equal(xla, masked)
  assert 0 < float(tf.reduce_mean(masked)) < 1       # some masked, not all
