"""tf_frontends.keras3 on every Keras 3 backend: parity with the tf_keras layers and Keras 3's
conventions (backend_checks.py holds the checks; each backend runs them in its own process).

TensorFlow and JAX always run (JAX is installed by scripts/setup.sh: a missing jax fails the
JAX test). PyTorch is not installed by set-up (its wheel pulls GBs of CUDA libraries): the
"torch" backend is collected only where torch is importable, e.g. in the environment
scripts/test_keras3_torch.sh builds; nothing is skipped.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKENDS = ["tensorflow", "jax"] + (["torch"] if importlib.util.find_spec("torch") else [])
# Checks every backend must report (backend_checks.checks(); more on TensorFlow and JAX).
FRONTENDS = ["efficientleaf", "leaf", "mel", "sincnet", "sincnet_plus", "tdfbanks"]
EXPECTED = ({f"{kind}[{name}]" for kind in ("parity", "defaults") for name in FRONTENDS} |
            {f"{kind}[{name}]" for kind in ("save_load", "mixed_precision")
             for name in ("leaf", "efficientleaf")} |
            {"fit[leaf]", "transfer_back", "composition", "bad_input", "import_side_effects"})
EXTRA = {"tensorflow": {"jit[leaf]", "export"}, "jax": set(), "torch": set()}


def run_checks(backend, folder):
  """Runs backend_checks in a fresh interpreter with KERAS_BACKEND=backend; its results."""
  env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_USE_LEGACY_KERAS", None)    # a Keras 3 program, as its users run it
  output = os.path.join(folder, f"{backend}.json")
  process = subprocess.run(
      [sys.executable, "-m", "tests.keras3.backend_checks", output], cwd=ROOT, env=env,
      capture_output=True, text=True, timeout=600)
  assert process.returncode == 0, process.stderr[-4000:]
  with open(output) as f:
    return json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_keras3_backend(backend, tmp_path):
  report = run_checks(backend, str(tmp_path))
  assert report["backend"] == backend
  results = report["results"]
  assert set(results) == EXPECTED | EXTRA[backend]
  failures = {name: message for name, message in results.items() if message != "ok"}
  assert not failures, "\n\n".join(f"{name}:\n{message}" for name, message in failures.items())
