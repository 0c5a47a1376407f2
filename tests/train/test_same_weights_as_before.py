"""Same seed -> the same weights as the trainer gave before it was rewritten (bit for bit).

tests/fixtures/reproducible/demo_leaf.json holds the exact run (the demo recipe, LEAF, shortened
to 2 epochs of 3 steps on the tone data set, an evaluation after each epoch: dropout, the best
checkpoint and the final evaluation all run) and a SHA-256 of every variable of its last
checkpoint (model, optimizer slots, step), computed with the trainer at the commit the file
names. The test trains the same run with today's trainer and compares every variable's bits.

The bits depend on the machine's arithmetic (oneDNN picks kernels by CPU): the fixture records
the CPU and TensorFlow it was made with. On another CPU, regenerate it with the trainer of the
commit it names (python -m tests.train.test_same_weights_as_before DIR) and commit it.
"""
import hashlib
import json
import os
import platform
import subprocess
import sys

import pytest
import tensorflow as tf

from tests import harness

FIXTURE = os.path.join(harness.REPO, "tests", "fixtures", "reproducible", "demo_leaf.json")
CONFIG = "train/configs/demo.py:leaf"
# The demo recipe as it is, but for the data (the tone set, 48 train clips: 3 steps of 16 per
# epoch), the crop (0.5 s) and the schedule (2 epochs, an evaluation after each).
OVERRIDES = {
    "dataset.eval_split": "eval", "dataset.test_split": "", "dataset.crop_seconds": 0.5,
    "num_epochs": 2, "eval_every_epochs": 1,
    "steps_per_loop": 3, "log_every_steps": 3, "checkpoint_every_steps": 3,
}


def variable_digests(workdir: str) -> dict:
  """{checkpoint key: sha256 of the value's bytes} of the latest checkpoint in WORKDIR."""
  return {key: hashlib.sha256(value.tobytes()).hexdigest()
          for key, value in sorted(harness.final_variables(workdir).items())}


def train(data_dir: str, workdir: str) -> dict:
  command = [sys.executable, "-m", "train.main", f"--config={CONFIG}", f"--workdir={workdir}",
             "--mode=train_and_eval", f"--config.dataset.data_dir={data_dir}",
             *[f"--config.{key}={value}" for key, value in OVERRIDES.items()]]
  completed = subprocess.run(command, cwd=harness.REPO, capture_output=True, text=True,
                             timeout=800)
  assert completed.returncode == 0, completed.stderr[-3000:]
  return variable_digests(workdir)


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor()


@pytest.mark.slow
def test_same_seed_gives_the_weights_of_the_trainer_before_its_rewrite(data_dir, tmp_path):
  with open(FIXTURE, encoding="utf-8") as f:
    fixture = json.load(f)
  assert (fixture["config"], fixture["overrides"]) == (CONFIG, OVERRIDES)
  digests = train(data_dir, str(tmp_path / "work"))
  assert sorted(digests) == sorted(fixture["variables"])
  assert any("frontend" in key for key in digests) and any("optimizer" in key for key in digests)
  differ = [key for key in digests if digests[key] != fixture["variables"][key]]
  assert differ == [], (f"{len(differ)} of {len(digests)} variables differ from the fixture "
                        f"(made on {fixture['cpu']}, TF {fixture['tensorflow']}; this machine: "
                        f"{_cpu()}, TF {tf.__version__}): {differ[:5]}")


if __name__ == "__main__":       # regenerate the fixture: python -m tests.train.<this> DIR
  scratch = sys.argv[1]
  digests = train(harness.write_dataset(os.path.join(scratch, "tones")),
                  os.path.join(scratch, "work"))
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=harness.REPO,
                          capture_output=True, text=True, check=True).stdout.strip()
  os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
  with open(FIXTURE, "w", encoding="utf-8") as f:
    json.dump({"commit": commit, "cpu": _cpu(), "tensorflow": tf.__version__, "config": CONFIG,
               "overrides": OVERRIDES, "data": "tests.harness.write_dataset() defaults",
               "variables": digests}, f, indent=1)
    f.write("\n")
