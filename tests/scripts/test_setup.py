"""scripts/setup.sh: its arguments, and what `--gpu` would add to an installed .venv/."""
import json
import os
import subprocess

import pytest

from tests.harness import REPO


def test_unknown_argument_is_refused_with_the_usage():
  completed = subprocess.run(["bash", "scripts/setup.sh", "--cuda"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
  assert completed.returncode == 2
  assert "unknown argument '--cuda'" in completed.stderr and "[--gpu]" in completed.stderr


@pytest.mark.slow
def test_gpu_adds_cuda_libraries_and_changes_nothing_else(tmp_path):
  """pip's dry run of `setup.sh --gpu` on the installed venv: only NVIDIA's CUDA wheels."""
  report = tmp_path / "report.json"
  environment = {**os.environ, "PIP_DRY_RUN": "1", "PIP_REPORT": str(report)}
  completed = subprocess.run(["bash", "scripts/setup.sh", "--gpu"], cwd=REPO, env=environment,
                             capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-3000:]
  names = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
  assert any(name.startswith("nvidia-cudnn") for name in names), names
  assert [name for name in names if not name.startswith("nvidia-")] == []
  assert not any(name.startswith(".installed-gpu") for name in os.listdir(f"{REPO}/.venv"))
