"""train.checkpoints: best / latest / path resolution, complete restores, damaged checkpoints."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from train import checkpoints


def _model(units=3, extra_layer=False):
  layers = [tf_keras.layers.Dense(units, name="head")]
  if extra_layer:
    layers.insert(0, tf_keras.layers.Dense(5, name="extra"))
  model = tf_keras.Sequential(layers)
  model.build([None, 4])
  return model


def _save(directory, model, step, max_to_keep=3, manager=None):
  checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(step, dtype=tf.int64))
  manager = manager or tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep)
  return manager.save(checkpoint_number=step)


def _fill(model, value):
  for v in model.variables:
    v.assign(tf.fill(v.shape, float(value)))


def test_best_falls_back_to_latest_and_a_missing_path_is_named(tmp_path):
  model = _model()
  latest = _save(tmp_path / "checkpoints", model, 1)
  assert checkpoints.candidates(str(tmp_path), "best") == [latest]
  assert checkpoints.candidates(str(tmp_path), "latest") == [latest]
  best = _save(tmp_path / "best", model, 1)
  assert checkpoints.candidates(str(tmp_path), "best") == [best, latest]
  with pytest.raises(FileNotFoundError, match="nope.index"):
    checkpoints.candidates(str(tmp_path), str(tmp_path / "nope"))
  with pytest.raises(FileNotFoundError, match="No checkpoint in .*Train first"):
    checkpoints.candidates(str(tmp_path / "empty"), "best")


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
  model = _model()
  checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(0, dtype=tf.int64))
  manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "checkpoints"), 3)
  paths = []
  for step in (1, 2, 3):
    _fill(model, step)
    checkpoint.step.assign(step)
    paths.append(manager.save(checkpoint_number=step))
  data = glob.glob(paths[-1] + ".data-*")[0]
  os.truncate(data, os.path.getsize(data) // 2)
  _fill(model, 0)
  checkpoint.step.assign(0)
  with caplog.at_level("WARNING"):
    restored = checkpoints.restore(checkpoint, model,
                                   checkpoints.candidates(str(tmp_path), "latest"))
  assert restored == paths[1] and int(checkpoint.step) == 2
  assert all(np.all(v.numpy() == 2.0) for v in model.variables)
  assert f"Checkpoint {paths[-1]} is damaged" in caplog.text


def test_every_checkpoint_damaged_is_an_error_naming_them(tmp_path):
  model = _model()
  path = _save(tmp_path / "checkpoints", model, 1)
  os.truncate(glob.glob(path + ".data-*")[0], 10)
  with pytest.raises(IOError, match=f"Every checkpoint is damaged: {path}"):
    checkpoints.restore(tf.train.Checkpoint(model=model), model, [path])


@pytest.mark.parametrize("other", [dict(units=4), dict(extra_layer=True)])
def test_a_checkpoint_of_another_model_is_refused_before_any_assignment(tmp_path, other):
  """Before: expect_partial() let a restore skip or ignore weights silently."""
  path = _save(tmp_path / "checkpoints", _model(**other), 1)
  model = _model()
  _fill(model, 7)
  with pytest.raises(checkpoints.CheckpointMismatchError, match=f"Checkpoint {path} does not "
                     "hold the exported model: its model variables differ"):
    checkpoints.restore(tf.train.Checkpoint(model=model), model, [path],
                        model_description="the exported model")
  assert all(np.all(v.numpy() == 7.0) for v in model.variables)


def test_a_checkpoint_without_optimizer_state_restores_the_model(tmp_path, caplog):
  source = _model()
  _fill(source, 5)
  path = _save(tmp_path / "best", source, 4)
  model = _model()
  optimizer = tf_keras.optimizers.Adam()
  optimizer.build(model.trainable_variables)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                   step=tf.Variable(0, dtype=tf.int64))
  with caplog.at_level("WARNING"):
    assert checkpoints.restore(checkpoint, model, [path]) == path
  assert all(np.all(v.numpy() == 5.0) for v in model.variables)
  assert "holds no optimizer state" in caplog.text


def test_a_workdir_given_relative_to_the_current_directory(tmp_path, monkeypatch):
  """The main job passes demo_out/demo_leaf: TF already joins the recorded names to it."""
  monkeypatch.chdir(tmp_path)
  v = tf.Variable(1.0)
  tf.train.CheckpointManager(tf.train.Checkpoint(v=v), os.path.join("run", "best"), 1).save()
  assert checkpoints.candidates("run", "best") == [os.path.join("run", "best", "ckpt-1")]
