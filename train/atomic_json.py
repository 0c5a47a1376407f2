"""JSON files written atomically: a killed writer leaves the old file (or none), never a short one."""
import json
import os

import tensorflow as tf


def write(path: str, value, *, tmp_suffix: str = "", indent: int = 2,
          sort_keys: bool = False) -> None:
  """Writes json(value) to path through a temporary file beside it, renamed when complete.

  The temporary name ends in `tmp_suffix` (default: unique to this project and process), so
  nothing a user keeps beside the file is ever overwritten, and a data prep clean-up can find
  its own leftovers by suffix.
  """
  tmp = path + (tmp_suffix or f".tf_frontends-{os.getpid()}.tmp")
  text = json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n"
  try:
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
