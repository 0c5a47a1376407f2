"""The one reader of DIR/dataset_info.json (written by prepare_data and the demo builder).

    {"classes": [{"index", "id", "display_name"}], "sample_rate",
     "splits": {name: {"num_examples", "num_skipped", "files",
                       "shards": {file: {"num_examples", "num_bytes"}}, ...}}, "skipped", ...}

A folder that data prep is writing (or was killed while writing) holds INCOMPLETE_MARKER beside
dataset_info.json; it is refused until a prep run completes. Every error here is a DataError (a
ValueError) or, for a missing file, a FileNotFoundError, whose one-line message names the
file and what is wrong.
"""
import json
import os

import tensorflow as tf

from train.data import manifests

FILE_NAME = "dataset_info.json"
# Written by data prep before it touches the first shard, removed after dataset_info.json.
INCOMPLETE_MARKER = "dataset_info.incomplete"


class DataError(ValueError):
  """A prepared data folder that cannot be used as it is; the message names the file."""


def path(data_dir: str) -> str:
  return os.path.join(data_dir, FILE_NAME)


def marker_path(data_dir: str) -> str:
  return os.path.join(data_dir, INCOMPLETE_MARKER)


def exists(data_dir: str) -> bool:
  return bool(data_dir) and tf.io.gfile.exists(path(data_dir))


def read(data_dir: str) -> dict:
  """The dict, checked: a DataError naming the file when it is missing, incomplete, not JSON,
  or lacks what the readers need (classes, sample rate, splits)."""
  file_path = path(data_dir)
  if tf.io.gfile.exists(marker_path(data_dir)):
    raise DataError(f"{data_dir} is incomplete: data prep was interrupted while writing it "
                    f"({marker_path(data_dir)} is still there); rerun data prep into that folder")
  if not tf.io.gfile.exists(file_path):
    raise FileNotFoundError(f"{file_path} not found: is {data_dir!r} a prepare_data output "
                            "folder?")
  try:
    with tf.io.gfile.GFile(file_path) as f:
      info = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise DataError(f"{file_path} is corrupt ({e}); rerun data prep into that folder") from None
  _check(info, file_path)
  return info


def _check(info, file_path: str) -> None:
  def bad(what):
    raise DataError(f"{file_path}: {what}; rerun data prep into that folder")

  if not isinstance(info, dict):
    bad(f"holds a {type(info).__name__}, not an object")
  for key in ("classes", "sample_rate", "splits"):
    if key not in info:
      bad(f"no {key!r} key")
  rate = info["sample_rate"]
  if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
    bad(f"'sample_rate' is {rate!r}, not a positive integer (Hz)")
  classes = info["classes"]
  fields = {"index", "id", "display_name"}
  if (not isinstance(classes, list) or not classes
      or not all(isinstance(c, dict) and fields <= set(c) for c in classes)):
    bad("'classes' must be a non-empty list of {index, id, display_name}")
  if sorted(c["index"] for c in classes) != list(range(len(classes))):
    bad(f"class indices must be 0..{len(classes) - 1}, each once")
  try:
    manifests.check_class_names(classes, file_path,
                                [f"class {c['index']}" for c in classes])
  except ValueError as e:
    raise DataError(str(e)) from None
  splits = info["splits"]
  if not isinstance(splits, dict):
    bad("'splits' is not an object")
  for name, split in splits.items():
    if not isinstance(split, dict) or not isinstance(split.get("files"), list):
      bad(f"split {name!r} has no 'files' list")


def check_shards(data_dir: str, info: dict, split: str) -> list:
  """-> the split's shard paths; FileNotFoundError naming a missing shard, DataError naming one
  whose size differs from what data prep wrote (truncated, or changed since)."""
  entry = info["splits"][split]
  written = entry.get("shards", {})         # older folders: no sizes, only presence is checked
  paths = []
  for name in entry["files"]:
    shard = os.path.join(data_dir, name)
    if not tf.io.gfile.exists(shard):
      raise FileNotFoundError(f"shard {shard} listed in {path(data_dir)} is missing; rerun data "
                              "prep into that folder")
    expected = written.get(name, {}).get("num_bytes")
    size = tf.io.gfile.stat(shard).length
    if expected is not None and size != expected:
      raise DataError(f"shard {shard} holds {size} bytes, data prep wrote {expected} "
                      f"({'truncated' if size < expected else 'changed since'}); rerun data prep "
                      "into that folder")
    paths.append(shard)
  return paths


def shard_examples(info: dict, split: str) -> list:
  """Records data prep wrote into each shard of the split (-1 where the folder does not say)."""
  entry = info["splits"][split]
  written = entry.get("shards", {})
  return [int(written.get(name, {}).get("num_examples", -1)) for name in entry["files"]]


def check_frontend_rate(frontend_rate_hz: int, info: dict, data_dir: str) -> None:
  """A DataError unless the model's frontend runs at the data's sample rate: a frontend at
  another rate would read every filter and window at the wrong frequency."""
  if int(frontend_rate_hz) != int(info["sample_rate"]):
    raise DataError(f"the frontend runs at {int(frontend_rate_hz)} Hz (config.frontend."
                    f"sample_rate) but {path(data_dir)} says the audio is "
                    f"{info['sample_rate']} Hz; set --config.frontend.sample_rate="
                    f"{info['sample_rate']} or prepare the data at {int(frontend_rate_hz)} Hz")
