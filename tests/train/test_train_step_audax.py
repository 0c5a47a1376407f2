"""Our trainer's first steps against audax's `train_step` from the same imported checkpoint.

tests/fixtures/audax/train_step{,_sincnet}.npz hold K = 6 steps of audax's own training step
(LEAF + EfficientNet-B0 and SincNet + B0, 5 classes, batch 4, dropout / drop path /
SpecAugment / mixup off, AdamW with weight decay 1e-6, 5 warm-up steps then cosine at the
recipe's 5e-4 x batch / 256; see make_audax_train_step_fixtures.py): the loss and learning
rate of every step and the parameters and batch statistics after the last one (every element
of arrays of <= 256, 48 sampled elements of larger ones). Ours runs the `,audax` config
(train/configs/audioset.py): squeeze-excitation convs without bias, Gabor mu / sigma clipped in
the forward pass only, optax's AdamW step, BatchNorm moving variance without Bessel's factor.

"Relative" below, per tensor, over the fixture's elements, with p0 the checkpoint, a audax's
parameters after K steps and o ours:
  parameter: |o - a| / |a|;   update: |o - a| / |a - p0|   (|.| the Euclidean norm).
At lr <= 7.8e-6 the K steps move a weight by 2e-5 of itself at most, so the parameter
measure alone would hide a wrong step: the update measure is the strict one.

Measured (LEAF / SincNet), the worst tensor of each group:
  loss of each step                          6.5e-5 / 8.2e-5
  trainable parameters, true gradient != 0   param 2.2e-6 / 1.7e-6; update median 8.7e-5 /
                                             5.9e-4, worst 2.7e-2 / 1.8e-2
  batch statistics (mean, var)               param 2.6e-5 / 3.1e-5, update 2.3e-3 / 2.9e-3
  frontend parameters                        param 3.1e-8 / 6.1e-8, update 6.7e-4 / 1.7e-3
  Gabor mu / sigma outside their range       unchanged, bit for bit, in both
1e-4 on the update is not reachable in float32 here, and the reason is measured: our own
trainer run twice, with TensorFlow's oneDNN kernels on and off (TF_ENABLE_ONEDNN_OPTS=0: the
same arithmetic, other summation orders), differs from itself by as much (update, LEAF /
SincNet: trainable median 6.0e-5 / 3.2e-4, worst 4.2e-3 / 1.4e-2; batch statistics 2.5e-3 /
2.8e-3; frontend 6.7e-4 / 1.7e-3). The forward passes agree to float32 rounding (step 0's loss:
1.4e-6 / 8.9e-6), but Adam turns a gradient's relative error into the same relative error of
its step, larger where a weight's gradient nearly cancels across steps; batch means of the
first blocks nearly cancel too.

The biases of the BatchNorms after each block's projection have a true gradient of exactly 0
in training mode: every path from them reaches a training-mode BatchNorm through linear layers
(the next block's 1x1 expansion or the head conv), which removes any per-channel shift. What
the frameworks compute for them is rounding noise (checked here: below 1e-4 of the gradient
of the same BatchNorm's scale), and Adam, dividing by the noise's own size, takes near-full
steps on it in both: each moves them by up to sum_k lr_k B_k (B_k Adam's largest normalised
step at count k, ~1), in unrelated directions. Checked: both stay within that bound of the
start (they differ from each other by up to 1.2e-4 of the parameter; their gradient measured
1.4e-6 / 1.1e-6 of the scale's).
"""
import math
import os
import re
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from export import audax_weights
from export import import_audax
from tf_frontends import impulse_responses
from train import models
from train import optimizer as optimizer_lib
from train import train_loop

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "audax")
BATCH = 4
FIXTURE_FILES = {"leaf": "train_step.npz", "sincnet": "train_step_sincnet.npz"}
# audax path of a projection BatchNorm's bias: block 0 (expansion ratio 1) has 2 conv-norms
PROJECTION_BIAS = re.compile(
    r"params/encoder/MBConv_(0/ConvNormActivation_1|\d+/ConvNormActivation_2)/BatchNorm_0/bias")


def adam_largest_steps(count: int, beta_1=0.9, beta_2=0.999) -> np.ndarray:
  """B_t, t = 1..count: max |m_hat / sqrt(v_hat)| over all gradient sequences (Cauchy-Schwarz on
  m_t = (1 - b1) sum_i b1^(t-i) g_i against v_t = (1 - b2) sum_i b2^(t-i) g_i^2)."""
  t = np.arange(1, count + 1)
  ratio = np.array([np.sum((beta_1**2 / beta_2)**np.arange(k)) for k in t])
  return ((1 - beta_1) * np.sqrt(1 - beta_2**t) / ((1 - beta_1**t) * np.sqrt(1 - beta_2))
          * np.sqrt(ratio))


def relative(ours, theirs, reference):
  return np.linalg.norm(ours - theirs) / np.linalg.norm(reference)


def in_checkpoint_layout(entry, value):
  """Our variable's value, flat, in the checkpoint's element order."""
  size = int(np.prod(entry.checkpoint_shape))
  where = entry.to_variable(np.arange(size).reshape(entry.checkpoint_shape)).reshape(-1)
  flat = np.empty(size, np.float64)
  flat[where] = value.reshape(-1)
  return flat


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FIXTURE_FILES))
def test_steps_equal_audaxs(tmp_path, name):
  fixture = np.load(os.path.join(FIXTURES, FIXTURE_FILES[name]))
  with tarfile.open(os.path.join(FIXTURES, "audax_fixtures.tar.xz")) as tar:
    tar.extract(f"{name}/checkpoint_1234", tmp_path)
    tar.extract(f"{name}/config.json", tmp_path)
  state, run, _ = import_audax.load_checkpoint(str(tmp_path / name / "checkpoint_1234"))
  config = import_audax.ported_config(run)
  config.model.dropout = 0.0                 # the stochastic parts off, as in the fixture
  config.model.stochastic_depth = 0.0
  config.model.spec_augment.enabled = False
  config.batch_size = BATCH
  config.steps_per_epoch, config.num_epochs = 1, 50   # 5 warm-up steps, then cosine
  model = models.build_model(config, run["sample_rate"])
  arrays = import_audax.checkpoint_arrays(state)
  audax_weights.assign(model, arrays, f"the fixture's {name} + B0")
  entries, zeros = audax_weights.weight_map(model)
  assert not zeros            # audax's parameters, no more: the SE convs have no bias
  optimizer, schedule = optimizer_lib.create_optimizer(config, model, 1, 50)
  optimizer.build(model.trainable_variables)
  step = tf.Variable(0, dtype=tf.int64)
  loop = train_loop.make_train_loop(model, optimizer, tf.distribute.get_strategy(), step, config)

  pool, labels = fixture["pool"], fixture["labels"]
  steps = len(fixture["loss"])
  rates = np.array([float(schedule(k)) for k in range(steps)])
  np.testing.assert_allclose(rates, fixture["learning_rate"], rtol=1e-6, atol=0)
  batches = tf.data.Dataset.from_tensor_slices({
      "audio": np.stack([pool[k:k + BATCH] / np.float32(32768) for k in range(steps)]),
      "labels": np.stack([labels[k:k + BATCH] for k in range(steps)])})
  iterator = iter(batches)
  before = [v.numpy() for v in model.trainable_variables]
  losses = [float(loop(iterator, tf.constant(1)))]
  # lr(0) = 0 moves no weight: nothing is projected either (audax's Gabor mu / sigma are
  # clipped in the forward pass only, and so are ours in this config)
  for old, variable in zip(before, model.trainable_variables):
    np.testing.assert_array_equal(variable.numpy(), old)
  losses += [float(loop(iterator, tf.constant(1))) for _ in range(steps - 1)]
  np.testing.assert_allclose(losses, fixture["loss"], rtol=1e-4)

  bound = float(np.sum(rates * adam_largest_steps(steps)))
  worst = {}

  def record(group, value):
    worst[group] = max(worst.get(group, 0.0), value)

  paths = [key[:-len(":value")] for key in fixture.files if key.endswith(":value")]
  assert set(paths) == set(entries)
  update_errors = []
  for path in paths:
    index = fixture[f"{path}:index"]
    audax = fixture[f"{path}:value"].astype(np.float64)
    start = np.asarray(arrays[path], np.float64).reshape(-1)[index]
    ours = in_checkpoint_layout(entries[path], entries[path].variable.numpy())[index]
    if PROJECTION_BIAS.fullmatch(path):
      for moved in (ours, audax):
        assert np.abs(moved - start).max() <= bound * (1 + 1e-3) + 1e-7 * np.abs(start).max(), path
      record("zero-gradient biases: parameter", relative(ours, audax, audax))
      continue
    if path.endswith("gabor_kernel"):
      # a checkpoint's mu or sigma outside the range the forward pass clips it to has
      # gradient 0, and the decay (lr * 1e-6 * w) rounds away: bit for bit unchanged
      mu, sigma = start.reshape(-1, 2).T
      low, high = impulse_responses.gabor_sigma_bounds(model.frontend.window_size)
      outside = np.stack([(mu < 0) | (mu > math.pi), (sigma < low) | (sigma > high)], 1).ravel()
      assert outside.any()
      np.testing.assert_array_equal(ours[outside], start[outside])
      np.testing.assert_array_equal(audax[outside], start[outside])
      ours, audax, start = ours[~outside], audax[~outside], start[~outside]
    group = ("batch statistics" if path.startswith("batch_stats/") else
             "frontend" if path.startswith("params/frontend/") else "trainable")
    record(f"{group}: parameter", relative(ours, audax, audax))
    record(f"{group}: update", relative(ours, audax, audax - start))
    if group == "trainable":
      update_errors.append(relative(ours, audax, audax - start))
  worst["trainable: update median"] = float(np.median(update_errors))
  print(name, {group: f"{value:.2g}" for group, value in sorted(worst.items())})
  assert worst["trainable: parameter"] <= 1e-5
  assert worst["batch statistics: parameter"] <= 1e-4
  assert worst["zero-gradient biases: parameter"] <= 3e-4
  # the step's tolerances: about twice the larger of audax's and our oneDNN-off differences
  assert worst["trainable: update median"] <= 1.2e-3
  assert worst["trainable: update"] <= 5e-2
  assert worst["batch statistics: update"] <= 6e-3
  assert worst["frontend: update"] <= 3.5e-3

  # the projection biases' gradient is rounding noise: < 1e-4 of their BatchNorm scale's
  # (measured 1.4e-6 / 1.1e-6)
  with tf.GradientTape() as tape:
    logits = model(pool[:BATCH] / np.float32(32768), training=True)
    loss = tf.reduce_mean(train_loop.per_example_loss(labels[:BATCH], logits, True))
  biases = [path for path in paths if PROJECTION_BIAS.fullmatch(path)]
  assert len(biases) == 16
  scales = [path[:-len("bias")] + "scale" for path in biases]
  gradients = tape.gradient(loss, [entries[p].variable for p in biases + scales])
  ratios = [float(tf.norm(b) / tf.norm(s))
            for b, s in zip(gradients[:len(biases)], gradients[len(biases):])]
  print(name, "projection-bias / scale gradient", f"{max(ratios):.2g}")
  assert max(ratios) < 1e-4
