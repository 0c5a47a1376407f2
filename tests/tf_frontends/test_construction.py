"""Constructing a frontend (what loading a config does) must not start TensorFlow's runtime:
MultiWorkerMirroredStrategy has to be created before it, or training fails at startup."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = """
import tf_frontends
from tensorflow.python.eager import context
for name in sorted(tf_frontends.FRONTENDS):
  tf_frontends.get(name, n_filters=8).get_config()
  assert not context.context()._initialized, name
from train.configs import demo
demo.get_config("mel")
assert not context.context()._initialized, "config"
print("ok")
"""


def test_constructing_frontends_and_configs_leaves_the_runtime_unstarted():
  result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
