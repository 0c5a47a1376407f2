"""train.workdir: run_info.json, config.json with defaults for keys it predates, fingerprints."""
import json
import os
import re

import pytest
import tensorflow as tf

from tests.harness import tiny_config
from train import models
from train import fingerprint
from train import workdir as workdir_lib

CLASSES = [{"index": 0, "id": "/m/a", "display_name": "A, with comma"},
           {"index": 1, "id": "/m/b", "display_name": "B"}]


def _model(frontend="mel", n_filters=8, num_classes=3):
  config = tiny_config("unused", frontend)
  config.frontend.n_filters = n_filters
  config.model.num_classes = num_classes
  return models.build_model(config)


def test_run_info_round_trip(tmp_path):
  workdir_lib.Workdir(str(tmp_path)).describe(
      tiny_config(str(tmp_path)), classes=CLASSES, sample_rate=16000, crop_seconds=1.0,
      multi_label=False, model_fingerprint="abc")
  assert workdir_lib.Workdir(str(tmp_path)).read_run_info() == {
      "format_version": 1, "classes": CLASSES, "sample_rate": 16000, "crop_seconds": 1.0,
      "multi_label": False, "model_fingerprint": "abc"}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "run_info.json"]   # no temp


def test_missing_or_corrupt_run_info_names_the_file(tmp_path):
  path = tmp_path / "run_info.json"
  with pytest.raises(FileNotFoundError, match=str(path)):
    workdir_lib.Workdir(str(tmp_path)).read_run_info()
  path.write_text('{"format_version": 1, "classes": [')
  with pytest.raises(ValueError, match=f"{path} is corrupt"):
    workdir_lib.Workdir(str(tmp_path)).read_run_info()
  path.write_text('{"format_version": 1}')
  with pytest.raises(ValueError, match=re.escape(f"{path} is corrupt (missing classes")):
    workdir_lib.Workdir(str(tmp_path)).read_run_info()


def test_an_older_config_json_takes_defaults_for_keys_it_predates(tmp_path):
  """issue 8: a workdir whose config.json predates a config key could not be rebuilt."""
  config = tiny_config(str(tmp_path / "data"))
  config.model.num_classes = 3
  saved = json.loads(config.to_json())
  del saved["model"]["norm_momentum"]           # keys added after this run was trained
  del saved["dataset"]["full_clip_eval"]
  del saved["eval_every_epochs"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  loaded = workdir_lib.Workdir(str(tmp_path)).load_config()
  assert loaded.model.norm_momentum == 0.99 and loaded.dataset.full_clip_eval
  assert loaded.eval_every_epochs == 1
  assert loaded.frontend.to_dict() == config.frontend.to_dict()     # kept as saved
  assert loaded.model.resnet.depth_multiplier == 0.25
  model = models.build_model(loaded)
  assert model(tf.zeros([1, 8000])).shape == (1, 3)


def test_describe_stores_a_relative_data_dir_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  config = tiny_config("demo_out/demo_data")
  workdir_lib.Workdir(str(tmp_path / "run")).describe(
      config, classes=CLASSES, sample_rate=16000, crop_seconds=1.0, multi_label=False,
      model_fingerprint="abc")
  assert workdir_lib.Workdir(str(tmp_path / "run")).load_config().dataset.data_dir == str(
      tmp_path / "demo_out" / "demo_data")
  assert config.dataset.data_dir == "demo_out/demo_data"           # the caller's is untouched


def test_fingerprint_tells_models_apart_and_matches_the_checkpoint(tmp_path):
  mel = _model()
  assert fingerprint.model_fingerprint(_model()) == fingerprint.model_fingerprint(mel)
  others = [_model("leaf"), _model(n_filters=16), _model(num_classes=4)]
  fingerprints = {fingerprint.model_fingerprint(m) for m in [mel] + others}
  assert len(fingerprints) == 4
  path = tf.train.Checkpoint(model=mel, step=tf.Variable(3)).save(str(tmp_path / "ckpt"))
  assert fingerprint.checkpoint_structure(path) == fingerprint.model_structure(mel)
  # the paths are the checkpoint's own keys
  keys = {k for k, _ in tf.train.list_variables(path) if k.startswith("model/")}
  assert keys == {f"model/{p}/.ATTRIBUTES/VARIABLE_VALUE" for p in fingerprint.variable_paths(mel)}


def test_only_the_owners_spell_the_names_of_run_and_export_files():
  """train/workdir.py names every file of a workdir and export/layout.py every file of an
  export folder; no other module builds those paths (the names are data of one owner)."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  owners = {
      os.path.join("train", "workdir.py"): ('"run_info.json"', '"eval_results.json"',
                                            '"best.json"', '"tmp_workers"', '"checkpoints"'),
      os.path.join("export", "layout.py"): ('"verification.json"', '"class_names.csv"',
                                            '.tflite"', '"README.md"',
                                            '.tf_frontends_export.json"'),
  }
  spelled = []
  for package in ("train", "export", "hub_modules"):
    for folder, _, names in os.walk(os.path.join(root, package)):
      for name in names:
        path = os.path.join(folder, name)
        relative = os.path.relpath(path, root)
        if not name.endswith(".py"):
          continue
        with open(path, encoding="utf-8") as f:
          text = f.read()
        spelled += [f"{relative}: {literal}" for owner, literals in owners.items()
                    if relative != owner for literal in literals if literal in text]
  assert spelled == []
