"""Reads flax msgpack checkpoints (`flax.serialization.msgpack_restore`'s format) without flax.

flax's `checkpoints.save_checkpoint` (before orbax) writes one msgpack document: nested
maps with string keys whose leaves are msgpack values or extension values

    code 1  numpy array:   msgpack of [shape, dtype name, C-order bytes]
    code 2  Python complex: msgpack of [real, imag]
    code 3  numpy scalar:  as code 1, with shape []

and arrays over 1 GiB split into {"__msgpack_chunked_array__": True, "shape": [...],
"chunks": {"0": flat array, "1": ...}}. bfloat16 arrays (half-precision TPU runs) are
decoded with ml_dtypes, which TensorFlow already depends on.
"""
import os

import ml_dtypes
import msgpack
import numpy as np

_NDARRAY, _NATIVE_COMPLEX, _NPSCALAR = 1, 2, 3
_CHUNKED = "__msgpack_chunked_array__"


class NotAFlaxCheckpoint(ValueError):
  """The file is not a flax msgpack checkpoint."""


def _dtype(name: bytes) -> np.dtype:
  name = name.decode("ascii")
  return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _ndarray(data: bytes) -> np.ndarray:
  shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
  return np.frombuffer(buffer, dtype=_dtype(dtype_name)).reshape(shape)


def _ext_hook(code: int, data: bytes):
  if code == _NDARRAY:
    return _ndarray(data)
  if code == _NPSCALAR:
    return _ndarray(data)[()]
  if code == _NATIVE_COMPLEX:
    real, imag = msgpack.unpackb(data)
    return complex(real, imag)
  raise ValueError(f"unknown msgpack extension type {code}")


def _unchunk(tree):
  if not isinstance(tree, dict):
    return tree
  if tree.get(_CHUNKED) is True:
    chunks = tree["chunks"]
    flat = np.concatenate([chunks[str(i)] for i in range(len(chunks))])
    return flat.reshape(tree["shape"])
  return {key: _unchunk(value) for key, value in tree.items()}


def read(path: str) -> dict:
  """The state dict of the checkpoint file `path` ({"params": {...}, ...}).

  Raises NotAFlaxCheckpoint (naming the file and the reason) for anything else:
  a folder (an orbax checkpoint), a file that is not msgpack, or a msgpack document
  that is not a map.
  """
  if os.path.isdir(path):
    raise NotAFlaxCheckpoint(
        f"{path} is a folder, not a flax msgpack checkpoint file (audax writes single files "
        "named checkpoint_<step> or best_ckpt_<step>; orbax checkpoint folders are not supported)")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint {path} does not exist")
  with open(path, "rb") as f:
    data = f.read()
  try:
    tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False)
  except Exception as e:  # msgpack raises many types (ExtraData, FormatError, ValueError, ...)
    raise NotAFlaxCheckpoint(
        f"{path} is not a flax msgpack checkpoint ({len(data)} bytes): "
        f"{type(e).__name__}: {e}") from None
  if not isinstance(tree, dict):
    raise NotAFlaxCheckpoint(
        f"{path} is not a flax msgpack checkpoint: it holds a single "
        f"{type(tree).__name__}, not a map of named parameters")
  return _unchunk(tree)


def flatten(tree: dict, prefix: str = "") -> dict:
  """{"a": {"b": x}} -> {"a/b": x}; empty maps vanish."""
  flat = {}
  for key, value in tree.items():
    path = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(flatten(value, path + "/"))
    else:
      flat[path] = value
  return flat
