"""Configs are data: loading any config file imports no TensorFlow, and the frontend block it
writes (read from tf_frontends' source, not imported) is exactly the layer's own config."""
import glob
import json
import os
import subprocess
import sys

import pytest

import tf_frontends
from tests.harness import REPO
from train.configs import default
from train.configs import frontend_arguments

# Runs in a fresh interpreter: every config file, every frontend; prints what got imported.
LOAD_EVERY_CONFIG = r'''
import importlib.util, json, sys
from train.configs import frontend_arguments
loaded = {}
for path in sys.argv[1:]:
  spec = importlib.util.spec_from_file_location("config_under_test", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if hasattr(module, "get_config"):
    for name in frontend_arguments.registry():
      try:
        loaded[f"{path}:{name}"] = module.get_config(name).frontend.name
      except TypeError:                        # a config without a frontend argument
        loaded[path] = type(module.get_config()).__name__
heavy = sorted(m for m in ("tensorflow", "tf_keras", "keras", "tf_frontends") if m in sys.modules)
print(json.dumps({"loaded": loaded, "heavy_modules": heavy}))
'''


def test_loading_every_config_imports_no_tensorflow():
  paths = sorted(glob.glob(os.path.join(REPO, "train", "configs", "*.py")))
  completed = subprocess.run([sys.executable, "-c", LOAD_EVERY_CONFIG, *paths], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
  assert completed.returncode == 0, completed.stderr[-3000:]
  result = json.loads(completed.stdout.splitlines()[-1])
  assert result["heavy_modules"] == []
  demo_leaf = os.path.join(REPO, "train", "configs", "demo.py") + ":leaf"
  assert result["loaded"][demo_leaf] == "leaf"
  assert len(result["loaded"]) >= 2 * len(tf_frontends.FRONTENDS)


def test_the_registry_read_from_source_is_the_imported_one():
  assert {name: cls for name, (_, cls) in frontend_arguments.registry().items()} == {
      name: cls.__name__ for name, cls in tf_frontends.FRONTENDS.items()}


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
def test_frontend_block_is_the_layers_own_config(name):
  layer_config = tf_frontends.get(name, n_filters=8).get_config()
  for key in ("name", "trainable", "dtype"):        # tf_keras.layers.Layer's own arguments
    layer_config.pop(key)
  assert default.frontend_config(name, n_filters=8).to_dict() == {"name": name, **layer_config}


def test_unknown_frontend_argument_is_refused_naming_it():
  with pytest.raises(ValueError, match=r"no argument\(s\) \['n_filter'\]"):
    default.frontend_config("leaf", n_filter=8)
  with pytest.raises(ValueError, match="Unknown frontend 'leafy'"):
    default.frontend_config("leafy")
