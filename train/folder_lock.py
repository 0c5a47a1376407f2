"""An exclusive lock on a folder (FOLDER/.lock), and who holds it: one writer per workdir.

    with lock(folder, "train.main"):   RunError naming the holder if another process holds it
    lock_holder(folder)                the holder while a live process holds it, for readers

train/workdir.py's Workdir.lock is the one user: it locks the workdir (a non-chief worker, its
own throw-away folder).
"""
import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket

from absl import logging

from train.errors import RunError

LOCK_NAME = ".lock"


def _local(workdir: str) -> bool:
  return "://" not in workdir


def describe_holder(holder: dict) -> str:
  return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
          f"{holder.get('program', 'a program')} started {holder.get('started', '?')}")


def _read_holder(f) -> dict:
  f.seek(0)
  try:
    holder = json.loads(f.read() or "{}")
  except ValueError:
    return {}
  return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def lock(workdir: str, program: str):
  """Holds WORKDIR/.lock exclusively while the block runs; RunError naming the holder if another
  process holds it.

  An advisory flock(2) lock: the kernel releases it when its holder dies, SIGKILL included, so
  a lock left by a killed run is taken over (with a warning naming that run) instead of
  blocking the workdir for ever. The file names its holder (pid, host, program, start time)
  for the message others get; it is removed on release. Remote workdirs (gs://...) are not
  locked (no flock there): a warning says so.
  """
  if not _local(workdir):
    logging.warning("%s is not on a local file system: it is not locked against a second "
                    "writer.", workdir)
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_NAME)
  while True:
    f = open(path, "a+", encoding="utf-8")
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read_holder(f)
      f.close()
      if e.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise RunError(f"Workdir {workdir} is in use by {describe_holder(holder)} "
                   f"(lock {path}). Wait for it to end, or use another --workdir.") from None
    # The file we locked may have been removed by a holder releasing it meanwhile: lock
    # the one at the path.
    try:
      same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
      same = False
    if same:
      break
    f.close()
  previous = _read_holder(f)
  if previous:
    logging.warning("Took over the lock of %s: %s, which is gone (killed?).", workdir,
                    describe_holder(previous))
  f.seek(0)
  f.truncate()
  f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "program": program,
                      "started": datetime.datetime.now().astimezone().isoformat(
                          timespec="seconds")}) + "\n")
  f.flush()
  try:
    yield
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)
    f.close()          # releases the lock


def lock_holder(workdir: str):
  """The holder dict of a workdir's lock while a live process holds it, else None (reads
  only: never creates the lock file)."""
  path = os.path.join(workdir, LOCK_NAME)
  if not _local(workdir) or not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
      except OSError:
        return _read_holder(f) or {}
      return None
  except FileNotFoundError:       # released meanwhile
    return None


