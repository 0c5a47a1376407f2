"""JSON files written atomically: a killed writer leaves the old file (or none), never a short one.

Strict JSON only: a non-finite float (a metric of a diverged model) is written as null, with a
warning naming its key, since Python's Infinity / NaN tokens are not JSON and other readers
refuse them.
"""
import json
import math
import numbers
import os

from absl import logging
import tensorflow as tf


def _finite_or_null(value, key: str, replaced: list):
  if isinstance(value, numbers.Real) and not math.isfinite(value):
    replaced.append(f"{key}={value}")
    return None
  if isinstance(value, dict):
    return {k: _finite_or_null(v, f"{key}.{k}" if key else str(k), replaced)
            for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite_or_null(v, f"{key}[{i}]", replaced) for i, v in enumerate(value)]
  return value


def write(path: str, value, *, tmp_suffix: str = "", indent: int = 2,
          sort_keys: bool = False) -> None:
  """Writes json(value) to path through a temporary file beside it, renamed when complete.

  The temporary name ends in `tmp_suffix` (default: unique to this project and process), so
  nothing a user keeps beside the file is ever overwritten, and a data prep clean-up can find
  its own leftovers by suffix.
  """
  replaced = []
  value = _finite_or_null(value, "", replaced)
  if replaced:
    logging.warning("%s: not finite, written as null: %s", path, ", ".join(replaced))
  tmp = path + (tmp_suffix or f".tf_frontends-{os.getpid()}.tmp")
  text = json.dumps(value, indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"
  try:
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
