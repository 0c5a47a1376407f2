"""Our trainer's first steps against audax's `train_step` from the same imported checkpoint.

tests/fixtures/audax/train_step.npz holds K = 6 steps of audax's own training step (LEAF +
EfficientNet-B0, 5 classes, batch 4, dropout / drop path / SpecAugment / mixup off, AdamW with
weight decay 1e-6, 5 warm-up steps then cosine at the recipe's 5e-4 x batch / 256; see
make_audax_train_step_fixtures.py). Compared here: the learning rate and the train-mode loss
of every step (step 0's rate is 0 in both, so it moves no weight). The parameters after K
steps are in the fixture but not compared yet (issue 19): our squeeze-excitation convs have
biases that audax's lack (zero at import, trained here), our Gabor constraint projects sigma
after each update where audax clips it in the forward pass only, the biases of the projection
BatchNorms have an exact gradient of 0 in training mode (a BatchNorm follows every path from
them) so Adam steps them on rounding noise in both frameworks, and at this learning rate a
step (~1e-5) is within a few hundred float32 roundings of the weights.
"""
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from export import audax_weights
from export import import_audax
from train import models
from train import optimizer as optimizer_lib
from train import train_loop

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "audax")
BATCH = 4


@pytest.mark.slow
def test_first_steps_equal_audaxs(tmp_path):
  fixture = np.load(os.path.join(FIXTURES, "train_step.npz"))
  with tarfile.open(os.path.join(FIXTURES, "audax_fixtures.tar.xz")) as tar:
    tar.extract("leaf/checkpoint_1234", tmp_path)
    tar.extract("leaf/config.json", tmp_path)
  state, run, _ = import_audax.load_checkpoint(str(tmp_path / "leaf" / "checkpoint_1234"))
  config = import_audax.ported_config(run)
  config.model.dropout = 0.0                 # the stochastic parts off, as in the fixture
  config.model.stochastic_depth = 0.0
  config.model.spec_augment.enabled = False
  config.batch_size = BATCH
  config.steps_per_epoch, config.num_epochs = 1, 50   # 5 warm-up steps, then cosine
  model = models.build_model(config, run["sample_rate"])
  arrays = import_audax.checkpoint_arrays(state)
  audax_weights.assign(model, arrays, "the fixture's LEAF + B0")
  optimizer, schedule = optimizer_lib.create_optimizer(config, model, 1, 50)
  optimizer.build(model.trainable_variables)
  step = tf.Variable(0, dtype=tf.int64)
  loop = train_loop.make_train_loop(model, optimizer, tf.distribute.get_strategy(), step, config)

  pool, labels = fixture["pool"], fixture["labels"]
  steps = len(fixture["loss"])
  np.testing.assert_allclose([float(schedule(k)) for k in range(steps)],
                             fixture["learning_rate"], rtol=1e-6, atol=0)
  batches = tf.data.Dataset.from_tensor_slices({
      "audio": np.stack([pool[k:k + BATCH] / np.float32(32768) for k in range(steps)]),
      "labels": np.stack([labels[k:k + BATCH] for k in range(steps)])})
  iterator = iter(batches)
  before = [v.numpy() for v in model.trainable_variables]
  losses = [float(loop(iterator, tf.constant(1)))]
  # lr(0) = 0: no weight moved, except where our Gabor constraint (leaf-audio's, applied
  # after every update) projected the fixture's out-of-range sigmas; audax clips them only
  # in the forward pass, so its parameters keep them.
  projected = 0
  for old, variable in zip(before, model.trainable_variables):
    expected = old if variable.constraint is None else variable.constraint(old).numpy()
    projected += int(np.sum(expected != old))
    np.testing.assert_array_equal(variable.numpy(), expected)
  assert projected > 0
  losses += [float(loop(iterator, tf.constant(1))) for _ in range(steps - 1)]
  # measured 1.4e-6 .. 6.5e-5 (2.5e-5 with the squeeze-excitation biases held at zero)
  np.testing.assert_allclose(losses, fixture["loss"], rtol=1e-4)
