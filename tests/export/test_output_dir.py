"""Export never deletes what it did not write: --output_dir checks, marker, temporary folders."""
import json
import os
import subprocess
import sys

import pytest

from export import layout
from export import main as export_main
from export import output_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _workdir(path):
  """A folder laid out like a training run (what must never be deleted)."""
  (path / "checkpoints").mkdir(parents=True)
  (path / "checkpoints" / "ckpt-1.index").write_text("x")
  (path / "config.json").write_text("{}")
  (path / "run_info.json").write_text("{}")
  return path


def _earlier_export(path):
  path.mkdir(parents=True)
  (path / "README.md").write_text("card")
  (path / layout.MARKER).write_text(json.dumps(
      {"written_by": "tf_frontends export.main", "complete": True, "entries": ["README.md"]}))
  return path


def _tree(path):
  return sorted(os.path.relpath(os.path.join(root, f), path)
                for root, _, files in os.walk(path) for f in files)


@pytest.mark.parametrize("where,message", [
    (lambda w: w, "is the training workdir"),
    (lambda w: w / "export", "is inside the training workdir"),
    (lambda w: w.parent, "contains the training workdir"),
])
def test_export_into_over_or_around_the_workdir_is_refused(tmp_path, where, message):
  workdir = _workdir(tmp_path / "runs" / "run1")
  before = _tree(tmp_path)
  with pytest.raises(ValueError, match=message):
    export_main.export(str(workdir), str(where(workdir)), overwrite=True)
  assert _tree(tmp_path) == before


def test_another_runs_workdir_or_a_folder_inside_one_is_refused(tmp_path):
  mine = _workdir(tmp_path / "mine")
  other = _workdir(tmp_path / "other")
  with pytest.raises(ValueError, match="is a training workdir"):
    output_dir.check(str(other), str(mine), overwrite=True)
  with pytest.raises(ValueError, match=f"lies inside the training workdir {other}"):
    output_dir.check(str(other / "best" / "export"), str(mine), overwrite=True)


def test_a_folder_with_user_files_is_refused_even_with_overwrite(tmp_path):
  (tmp_path / "out").mkdir()
  (tmp_path / "out" / "thesis.tex").write_text("mine")
  with pytest.raises(ValueError, match="not an earlier export"):
    output_dir.check(str(tmp_path / "out"), str(tmp_path / "run"), overwrite=True)
  _earlier_export(tmp_path / "old")
  (tmp_path / "old" / "notes.txt").write_text("added by the user")
  with pytest.raises(ValueError, match="also holds notes.txt"):
    output_dir.check(str(tmp_path / "old"), str(tmp_path / "run"), overwrite=True)


def test_an_earlier_export_is_replaced_only_with_overwrite(tmp_path):
  _earlier_export(tmp_path / "out")
  with pytest.raises(FileExistsError, match="--overwrite"):
    output_dir.check(str(tmp_path / "out"), str(tmp_path / "run"), overwrite=False)
  output_dir.check(str(tmp_path / "out"), str(tmp_path / "run"), overwrite=True)
  with output_dir.Staging(str(tmp_path / "out")) as staging:
    (tmp_path / staging.path / "README.md").write_text("new card")
    staging.commit(checkpoint="best/ckpt-2")
  assert (tmp_path / "out" / "README.md").read_text() == "new card"
  marker = output_dir.read_marker(str(tmp_path / "out"))
  assert marker["entries"] == ["README.md"] and marker["complete"]
  assert sorted(os.listdir(tmp_path)) == ["out"]          # no temporary folder left


def test_an_export_from_before_the_marker_is_recognised_by_its_files(tmp_path):
  old = tmp_path / "out"
  (old / "classifier").mkdir(parents=True)
  (old / "README.md").write_text("card")
  (old / "verification.json").write_text('{"smoke_tests": {}, "sizes_bytes": {}}')
  output_dir.check(str(old), str(tmp_path / "run"), overwrite=True)
  (old / "thesis.tex").write_text("mine")
  with pytest.raises(ValueError, match="not an earlier export"):
    output_dir.check(str(old), str(tmp_path / "run"), overwrite=True)


def test_a_failed_export_leaves_nothing_beside_out(tmp_path):
  with pytest.raises(RuntimeError):
    with output_dir.Staging(str(tmp_path / "out")) as staging:
      assert os.path.basename(staging.path).startswith(layout.TMP_PREFIX + "out.")
      raise RuntimeError("conversion failed")
  assert os.listdir(tmp_path) == []


def test_leftovers_of_a_killed_export_are_removed_and_nothing_else(tmp_path):
  dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True).stdout.strip()
  prefix = f"{layout.TMP_PREFIX}out.{dead_pid}"
  ours = _earlier_export(tmp_path / f"{prefix}.tmp-abc")            # marker + content
  empty = tmp_path / f"{prefix}.old-def"
  empty.mkdir()
  users = tmp_path / f"{prefix}.tmp-ghi"                         # our name, not our marker
  users.mkdir()
  (users / "data.bin").write_text("x")
  running = _earlier_export(tmp_path / f"{layout.TMP_PREFIX}out.{os.getpid()}.tmp-jkl")
  other_out = _earlier_export(tmp_path / f"{layout.TMP_PREFIX}other.{dead_pid}.tmp-mno")
  (tmp_path / "notes.tmp").write_text("x")
  (tmp_path / ".out.tmp-123").mkdir()                             # the old naming: not ours
  removed = output_dir.clean_leftovers(str(tmp_path / "out"))
  assert sorted(removed) == sorted([str(ours), str(empty)])
  assert users.exists() and running.exists() and other_out.exists()
  assert (tmp_path / "notes.tmp").exists() and (tmp_path / ".out.tmp-123").exists()


def _run_export(*args):
  return subprocess.run([sys.executable, "-m", "export.main", *args], capture_output=True,
                        text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize("case", ["file", "read_only"])
def test_unusable_output_dir_is_a_clear_error_without_traceback(tmp_path, case):
  workdir = _workdir(tmp_path / "run")
  if case == "file":
    target = tmp_path / "out.txt"
    target.write_text("a file")
    expected = "exists and is not a folder"
  else:
    target = "/proc/tf_frontends_out"                    # not writable, even for root
    expected = "cannot write in /proc"
  proc = _run_export(f"--workdir={workdir}", f"--output_dir={target}")
  assert proc.returncode == 1
  assert "export failed:" in proc.stderr and expected in proc.stderr
  assert "Traceback" not in proc.stderr
