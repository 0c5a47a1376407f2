"""Seeded runs give bit-identical weights on one machine, whatever else the machine is doing.

Nothing in a training run may choose its arithmetic by timing (the filterbank's kernel gradient
was once chosen by timing both formulations on the first backward pass, so a loaded machine
could take the other one). Two runs of the same tiny LEAF recipe, one of them while two busy
processes compete for the CPUs, must end with the same bits in every variable.
"""
import subprocess
import sys

import numpy as np
import pytest

from tests import harness
from tests.harness import REPO, main_command

BUSY_LOOP = "import time\nend = time.time() + 600\nwhile time.time() < end:\n  pass\n"


def _train(data_dir, workdir):
  command = [arg.replace("demo.py:mel", "demo.py:leaf") for arg in main_command(
      data_dir, workdir, overrides={"num_epochs": 1, "eval_every_epochs": 0}, mode="train")]
  completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]
  return harness.final_variables(workdir)


@pytest.mark.slow
def test_same_seed_same_weights_under_background_load(data_dir, tmp_path):
  quiet = _train(data_dir, str(tmp_path / "quiet"))
  busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(2)]
  try:
    loaded = _train(data_dir, str(tmp_path / "loaded"))
  finally:
    for process in busy:
      process.kill()
      process.wait()
  assert sorted(quiet) == sorted(loaded)
  filterbank = "model/frontend/_filterbank/kernel/.ATTRIBUTES/VARIABLE_VALUE"
  assert quiet[filterbank].shape == (8, 2)           # LEAF's Gabor parameters are among them
  changed = [name for name in quiet if not np.array_equal(quiet[name], loaded[name])]
  assert changed == []
