"""The export folder: export writes only there and never deletes what it did not write.

    check(output_dir, workdir, overwrite)   refuses a folder that is, contains or lies inside a
                                            training workdir, or holds anything but an export
    Staging(output_dir)                     a temporary folder beside OUT, renamed over it when
                                            complete, removed on failure

An export folder carries its marker (export/layout.py names it and every other file), a JSON
file listing what export wrote. --overwrite only replaces a folder whose marker lists everything
in it. Temporary folders beside OUT are named layout.TMP_PREFIX + "<OUT's name>.<pid>.<kind>-
<random>" and carry the marker from the start, so the
leftovers of a killed export (its process gone) are recognised and removed by the next export to
the same OUT; nothing else beside OUT is touched.
"""
import json
import os
import re
import shutil
import tempfile
import time

from export import layout
from train import workdir as workdir_lib

_WRITER = "tf_frontends export.main"


class OutputDirError(ValueError):
  """An --output_dir that export must not write to."""


def _read_json(path: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def read_marker(path: str):
  """The marker dict of an export folder, or None if it carries none (or not ours)."""
  folder = layout.ExportLayout(path)
  marker = _read_json(folder.marker)
  if isinstance(marker, dict) and marker.get("written_by") == _WRITER:
    return marker
  # An export written before the marker existed: only export's own files, and its report.
  entries = set(os.listdir(path)) if os.path.isdir(path) else set()
  report = _read_json(folder.verification)
  if entries and entries <= layout.UNMARKED_ENTRIES and isinstance(report, dict) and {
      "smoke_tests", "sizes_bytes"} <= set(report):
    return {"written_by": _WRITER, "complete": True, "entries": sorted(entries)}
  return None


def _inside(path: str, folder: str) -> bool:
  return os.path.commonpath([path, folder]) == folder


def check(output_dir: str, workdir: str, overwrite: bool) -> None:
  """Raises OutputDirError / FileExistsError unless export may write output_dir (absolute)."""
  workdir = os.path.realpath(workdir)
  real = os.path.realpath(output_dir)
  if _inside(real, workdir):
    where = "the" if real == workdir else "inside the"
    raise OutputDirError(f"--output_dir {output_dir} is {where} training workdir {workdir}: "
                         "export writes elsewhere, never into a run.")
  if _inside(workdir, real):
    raise OutputDirError(f"--output_dir {output_dir} contains the training workdir {workdir}.")
  for ancestor in _ancestors(real):
    if workdir_lib.Workdir.looks_like_workdir(ancestor):
      raise OutputDirError(f"--output_dir {output_dir} lies inside the training workdir "
                           f"{ancestor}.")
  if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
    raise OutputDirError(f"--output_dir {output_dir} exists and is not a folder.")
  parent = _existing_parent(real)
  try:                       # a real probe: permissions, read-only mounts, root alike
    os.rmdir(tempfile.mkdtemp(dir=parent, prefix=f"{layout.TMP_PREFIX}{os.path.basename(real)}."
                                                  f"{os.getpid()}.tmp-"))
  except OSError as e:
    raise OutputDirError(f"--output_dir {output_dir}: cannot write in {parent} "
                         f"({e.strerror}).") from None
  if not os.path.isdir(output_dir) or not os.listdir(output_dir):
    return
  if workdir_lib.Workdir.looks_like_workdir(output_dir):
    raise OutputDirError(f"--output_dir {output_dir} is a training workdir; export never "
                         "replaces one.")
  marker = read_marker(output_dir)
  if marker is None:
    raise OutputDirError(f"--output_dir {output_dir} is not empty and is not an earlier export "
                         f"(no {layout.MARKER}); export replaces only its own output. Choose a new "
                         "or empty folder.")
  foreign = sorted(set(os.listdir(output_dir)) - set(marker.get("entries", [])) - {layout.MARKER})
  if foreign:
    raise OutputDirError(f"--output_dir {output_dir} is an earlier export but also holds "
                         f"{', '.join(foreign[:5])}, which export did not write; move them "
                         "away first.")
  if not overwrite:
    raise FileExistsError(f"{output_dir!r} exists and is not empty (an earlier export); pass "
                          "--overwrite to replace it.")


def _ancestors(path: str):
  parent = os.path.dirname(path)
  while parent and parent != path:
    yield parent
    path, parent = parent, os.path.dirname(parent)


def _existing_parent(path: str) -> str:
  parent = os.path.dirname(path)
  while not os.path.isdir(parent):
    parent = os.path.dirname(parent)
  return parent


def _write_marker(folder: str, **fields) -> None:
  with open(layout.ExportLayout(folder).marker, "w", encoding="utf-8") as f:
    json.dump({"written_by": _WRITER, **fields}, f, indent=2)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:        # someone else's process
    return True
  return True


def clean_leftovers(output_dir: str) -> list:
  """Removes temporary folders of dead exports to output_dir; returns their paths."""
  parent, name = os.path.split(output_dir)
  pattern = re.compile(re.escape(layout.TMP_PREFIX + name) + r"\.(\d+)\.(tmp|old)-[^/]+$")
  removed = []
  for entry in sorted(os.listdir(parent)) if os.path.isdir(parent) else []:
    match = pattern.match(entry)
    path = os.path.join(parent, entry)
    if (match and os.path.isdir(path) and not _pid_alive(int(match.group(1)))
        and (read_marker(path) is not None or not os.listdir(path))):
      shutil.rmtree(path, ignore_errors=True)
      removed.append(path)
  return removed


class Staging:
  """with Staging(OUT) as tmp: write into tmp; tmp.commit(entries, **details) moves it to OUT.

  Leaving the block without commit (an error, Ctrl-C) removes tmp.
  """

  def __init__(self, output_dir: str):
    self.output_dir = output_dir
    self.path = None

  def _temp_name(self, kind: str) -> str:
    parent, name = os.path.split(self.output_dir)
    return tempfile.mkdtemp(dir=parent, prefix=f"{layout.TMP_PREFIX}{name}.{os.getpid()}.{kind}-")

  def __enter__(self):
    os.makedirs(os.path.dirname(self.output_dir), exist_ok=True)
    self.path = self._temp_name("tmp")
    _write_marker(self.path, complete=False)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(self.path, 0o777 & ~umask)          # mkdtemp's 0700 would stick to OUT
    return self

  def commit(self, **details) -> None:
    """Marks tmp complete (listing what it holds) and renames it over OUT."""
    entries = sorted(e for e in os.listdir(self.path) if e != layout.MARKER)
    _write_marker(self.path, complete=True, entries=entries,
                  created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **details)
    old = None
    if os.path.isdir(self.output_dir):            # empty, or an earlier export (check())
      old = self._temp_name("old")
      os.rmdir(old)
      os.rename(self.output_dir, old)
    os.rename(self.path, self.output_dir)
    self.path = None
    if old:
      shutil.rmtree(old, ignore_errors=True)

  def __exit__(self, *exc):
    if self.path is not None:
      shutil.rmtree(self.path, ignore_errors=True)
    return False
