"""What a workdir records about its run besides checkpoints: config.json and run_info.json.

    write_config(workdir, config) / load_config(workdir)      WORKDIR/config.json
    write_run_info(workdir, classes=..., sample_rate=..., crop_seconds=...,
                   multi_label=..., model_fingerprint=...)    WORKDIR/run_info.json
    read_run_info(workdir)
    model_fingerprint(model)   hash of the model's variable names, shapes and dtypes

run_info.json: {"format_version": 1, "classes": [{"index", "id", "display_name"}, ...],
"sample_rate", "crop_seconds", "multi_label", "model_fingerprint"}.

(A minimal version of this API for the audax importer; the trainer's own version
replaces it where both exist.)
"""
import hashlib
import json
import os

import ml_collections
import tensorflow as tf

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"


def _write_text(path: str, text: str) -> None:
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    f.write(text)
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def _read_json(workdir: str, name: str):
  path = os.path.join(workdir, name)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path} not found: {workdir!r} is not a workdir")
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  _write_text(os.path.join(workdir, CONFIG_FILE), config.to_json(indent=2))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(_read_json(workdir, CONFIG_FILE))


def model_fingerprint(model) -> str:
  """sha256 (hex) of (name, shape, dtype) of every variable of `model`, in model order.

  Only the last name component counts ("kernel", "gamma", ...): Keras numbers layer
  names per process ("conv2d_7"), so full names differ between two builds of one model.
  """
  entries = [f"{v.name.split('/')[-1].split(':')[0]}|{v.shape.as_list()}|{v.dtype.name}"
             for v in model.variables]
  return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def write_run_info(workdir: str, *, classes, sample_rate: int, crop_seconds: float,
                   multi_label: bool, model_fingerprint: str) -> None:
  info = {"format_version": FORMAT_VERSION,
          "classes": [{"index": int(c["index"]), "id": str(c["id"]),
                       "display_name": str(c["display_name"])} for c in classes],
          "sample_rate": int(sample_rate), "crop_seconds": float(crop_seconds),
          "multi_label": bool(multi_label), "model_fingerprint": model_fingerprint}
  _write_text(os.path.join(workdir, RUN_INFO_FILE), json.dumps(info, indent=2))


def read_run_info(workdir: str) -> dict:
  info = _read_json(workdir, RUN_INFO_FILE)
  if info.get("format_version") != FORMAT_VERSION:
    raise ValueError(f"{os.path.join(workdir, RUN_INFO_FILE)}: format_version "
                     f"{info.get('format_version')!r}, this code reads {FORMAT_VERSION}")
  return info
