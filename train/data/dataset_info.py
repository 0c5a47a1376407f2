"""The one reader of DIR/dataset_info.json (written by prepare_data and the demo builder).

    {"classes": [{"index", "id", "display_name"}], "sample_rate",
     "splits": {name: {"num_examples", "num_skipped", "files", ...}}, "skipped", "clipped", ...}
"""
import json
import os

import tensorflow as tf

FILE_NAME = "dataset_info.json"


def path(data_dir: str) -> str:
  return os.path.join(data_dir, FILE_NAME)


def exists(data_dir: str) -> bool:
  return bool(data_dir) and tf.io.gfile.exists(path(data_dir))


def read(data_dir: str) -> dict:
  """The dict; a clear error naming the file when it is missing or not JSON."""
  file_path = path(data_dir)
  if not tf.io.gfile.exists(file_path):
    raise FileNotFoundError(f"{file_path} not found: is {data_dir!r} a prepare_data output "
                            "folder?")
  try:
    with tf.io.gfile.GFile(file_path) as f:
      return json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise ValueError(f"{file_path} is corrupt ({e}); rerun data prep into that folder") from None

