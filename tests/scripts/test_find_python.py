"""scripts/find_python.sh: the interpreter scripts/setup.sh makes .venv/ from."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "find_python.sh")


def fake_bin(tmp_path, pythons: dict):
  """A folder of executables: name -> "this" (runs this interpreter) or "broken"."""
  folder = tmp_path / "bin"
  folder.mkdir()
  for name, kind in pythons.items():
    body = f'exec "{sys.executable}" "$@"' if kind == "this" else "exit 127"
    (folder / name).write_text(f"#!/bin/sh\n{body}\n")
    (folder / name).chmod(0o755)
  return str(folder)


def find_python(path, python=None):
  env = {"PATH": f"{path}:/usr/bin:/bin"}
  if python:
    env["PYTHON"] = python
  return subprocess.run(["bash", SCRIPT], capture_output=True, text=True, env=env, timeout=60)


def test_skips_a_python_that_does_not_run_and_takes_the_next(tmp_path):
  """python3.11 here is a broken shim (a pyenv shim without that version installed)."""
  path = fake_bin(tmp_path, {"python3.11": "broken", "python3.12": "this", "python3.10": "this"})
  proc = find_python(path)
  assert proc.returncode == 0 and proc.stdout.strip() == "python3.12", proc.stderr


def test_python_variable_wins_and_is_checked(tmp_path):
  path = fake_bin(tmp_path, {"python3.11": "this", "mine": "this", "old": "broken"})
  assert find_python(path, python="mine").stdout.strip() == "mine"
  proc = find_python(path, python="old")
  assert proc.returncode == 1 and "no supported Python (3.9-3.13) among: old" in proc.stderr


def test_check_refuses_an_unsupported_version(tmp_path):
  path = fake_bin(tmp_path, {"this": "this"})
  ok = subprocess.run(["bash", SCRIPT, "--check", os.path.join(path, "this")], timeout=60)
  assert ok.returncode == 0                     # the test's own Python (3.9-3.13)
  old = tmp_path / "python2"
  old.write_text("#!/bin/sh\nexec python3 -c 'import sys; sys.exit(1)'\n")
  old.chmod(0o755)
  too_old = subprocess.run(["bash", SCRIPT, "--check", str(old)], timeout=60)
  assert too_old.returncode == 1
