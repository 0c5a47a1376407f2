"""The frontends demo binary: real speech in, one PNG per learnable frontend plus the features."""
import os
import subprocess
import sys

import pytest

import tf_frontends

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_demo_writes_pngs_for_spoken_sentence(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "train.frontends_demo", f"--output_dir={tmp_path}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = [l for l in result.stdout.splitlines() if "samples ->" in l]
  assert len(lines) == len(tf_frontends.FRONTENDS)
  # EfficientLEAF appends its median-filtered bands (the authors' default): 2 x 40 features.
  assert all((", 80)" if l.startswith("efficientleaf") else ", 40)") in l for l in lines)
  expected = {"features.png"} | {f"{n}_filters.png" for n in
                                 ("leaf", "sincnet", "sincnet_plus", "tdfbanks", "efficientleaf")}
  assert expected <= set(os.listdir(tmp_path))
  for name in expected:
    with open(tmp_path / name, "rb") as f:
      assert f.read(4) == b"\x89PNG"
