"""The learning-rate schedule of the AudioSet recipes equals audax's, step for step.

The fixture holds audax's own `create_learning_rate_fn` (tests/fixtures/audax/
make_audax_recipe_fixtures.py) at every 13th step of each run and at every step around its
start, the end of warm-up and its end; ours is what the trainer builds from the config.
"""
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from train import optimizer as optimizer_lib
from train import train_loop
from train.configs import audioset

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "fixtures", "audax", "learning_rate_schedules.npz")
TRAIN_CLIPS = 1785920         # AudioSet's balanced + unbalanced train clips in audax's recipes


def trainer_schedule(recipe: str):
  """(config, steps_per_epoch, total_steps, schedule) as train_loop makes them for the recipe."""
  config = audioset.get_config(recipe)
  info = {"splits": {config.dataset.train_split: {"num_examples": TRAIN_CLIPS}}}
  steps_per_epoch, total_steps, _ = train_loop._schedule_lengths(config, info)
  # frontend_lr_multiplier is 1, so create_optimizer looks at no model variable
  assert config.optimizer.frontend_lr_multiplier == 1.0
  optimizer, schedule = optimizer_lib.create_optimizer(config, None, steps_per_epoch,
                                                       total_steps)
  return config, steps_per_epoch, total_steps, optimizer, schedule


@pytest.mark.parametrize("recipe,batch_size,warmup_epochs", [("leaf", 1024, 5), ("mel", 2048, 10)])
def test_schedule_equals_audax_at_every_sampled_step(recipe, batch_size, warmup_epochs):
  fixture = np.load(FIXTURE)
  steps = fixture[f"{recipe}/steps"]
  audax = fixture[f"{recipe}/learning_rate"]
  config, steps_per_epoch, total_steps, _, schedule = trainer_schedule(recipe)
  assert (config.batch_size, config.optimizer.warmup_epochs) == (batch_size, warmup_epochs)
  assert config.batch_size == fixture[f"{recipe}/batch_size"]
  assert steps_per_epoch == fixture[f"{recipe}/steps_per_epoch"] == TRAIN_CLIPS // batch_size
  assert total_steps == 50 * steps_per_epoch
  peak = optimizer_lib.scaled_learning_rate(config.optimizer.base_learning_rate,
                                            config.batch_size)
  assert peak == fixture[f"{recipe}/base_learning_rate"] == 5e-4 * batch_size / 256
  assert steps[0] == 0 and steps[-1] > total_steps and np.diff(steps).max() <= 13

  ours = schedule(tf.constant(steps)).numpy()
  # Both are float32 evaluations of one formula. Rounding pi * progress to float32 (twice)
  # moves peak / 2 * (1 + cos) by up to pi * 2^-24 * peak on each side (measured 2.4 * 2^-24
  # * peak apart). One step of offset moves it by >= 2e-5 * peak mid-cosine, 1.1e-4 * peak in
  # warm-up: 50x this tolerance.
  np.testing.assert_allclose(ours, audax, rtol=0, atol=2 * math.pi * 2.0**-24 * peak)
  warmup = warmup_epochs * steps_per_epoch
  # The phases line up exactly: 0 at the first step, the peak itself at the end of warm-up.
  assert ours[steps == 0] == audax[steps == 0] == 0.0
  assert ours[steps == warmup] == audax[steps == warmup] == np.float32(peak)
  assert steps[np.argmax(ours)] == steps[np.argmax(audax)] == warmup
  assert np.all(ours[steps >= total_steps] <= 2**-24 * peak)


def test_the_kth_update_uses_the_learning_rate_at_k():
  """Like optax (audax's `scale_by_schedule` reads its count before incrementing it), the
  optimizer's k-th update (k = 0, 1, ...) uses schedule(k): the first one, at lr 0, leaves
  the weights as they were."""
  _, steps_per_epoch, _, optimizer, schedule = trainer_schedule("leaf")
  variable = tf.Variable([1.0, -2.0])
  gradient = tf.constant([0.5, 0.5])
  optimizer.apply_gradients([(gradient, variable)])
  np.testing.assert_array_equal(variable.numpy(), [1.0, -2.0])
  optimizer.apply_gradients([(gradient, variable)])
  assert np.all(variable.numpy() != [1.0, -2.0])
  for k in (1, 5 * steps_per_epoch, 60000):
    optimizer.iterations.assign(k)
    optimizer.apply_gradients([(gradient, variable)])
    # tf_keras keeps the rate of the last update in `learning_rate`
    assert float(optimizer.learning_rate) == float(schedule(k)) > 0
    assert int(optimizer.iterations) == k + 1


def optax_adamw_reference(start, gradients, learning_rate, weight_decay, epsilon,
                          beta_1=0.9, beta_2=0.999):
  """optax.adamw (0.1.7) in float64: scale_by_adam -> add_decayed_weights -> scale by -lr."""
  w, m, v = np.array(start, np.float64), 0.0, 0.0
  for count, g in enumerate(gradients, start=1):
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    m_hat, v_hat = m / (1 - beta_1**count), v / (1 - beta_2**count)
    w = w - learning_rate * (m_hat / (np.sqrt(v_hat) + epsilon) + weight_decay * w)
  return w


def test_audax_variant_takes_optax_adamw_steps():
  """`,audax`: epsilon after the bias correction and the decay inside the step, as optax.adamw;
  gradients down to 1e-10, where epsilon's place matters (tf_keras' form misses by up to 2x)."""
  config = audioset.get_config("leaf,audax")
  assert config.optimizer.optax_form and config.optimizer.epsilon == 1e-8
  rng = np.random.default_rng(3)
  start = rng.normal(size=40)
  gradients = rng.normal(size=(6, 40)) * np.logspace(-10, 0, 40)
  expected = optax_adamw_reference(start, gradients, 1e-2, 0.5, 1e-8)
  moved = {}
  for optax_form in (True, False):
    optimizer = optimizer_lib.AdamW(learning_rate=1e-2, weight_decay=0.5, epsilon=1e-8,
                                    optax_form=optax_form)
    variable = tf.Variable(start.astype(np.float32))
    for g in gradients:
      optimizer.apply_gradients([(tf.constant(g, tf.float32), variable)])
    moved[optax_form] = variable.numpy() - start
  # float32 weights of O(1): rounding of 6 steps, ~1e-6 of the step of ~6e-2
  np.testing.assert_allclose(moved[True], expected - start, rtol=1e-4, atol=1e-7)
  assert np.max(np.abs(moved[False] - (expected - start))) > 1e-3


def test_tf_keras_decay_rounds_away_at_the_recipes_rate():
  """What optax_form changes besides epsilon: tf_keras AdamW decays a weight in a separate
  assignment, w - w * lr * wd, which rounds back to w in float32 when lr * wd < 2^-25 (the
  recipe's 2e-3 x 1e-6): its decay never moves a weight. optax's sits inside the Adam step."""
  weights = np.random.default_rng(4).normal(size=1000).astype(np.float32)
  variable = tf.Variable(weights)
  optimizer = optimizer_lib.AdamW(learning_rate=2e-3, weight_decay=1e-6)
  for _ in range(3):
    optimizer.apply_gradients([(tf.zeros([1000]), variable)])
  np.testing.assert_array_equal(variable.numpy(), weights)
