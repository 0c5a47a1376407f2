"""Reads flax msgpack checkpoints (`flax.serialization.msgpack_restore`'s format) without flax.

flax's `checkpoints.save_checkpoint` (before orbax) writes one msgpack document: nested
maps with string keys whose leaves are msgpack values or extension values

    code 1  numpy array:   msgpack of [shape, dtype name, C-order bytes]
    code 2  Python complex: msgpack of [real, imag]
    code 3  numpy scalar:  as code 1, with shape []

and arrays over 1 GiB split into {"__msgpack_chunked_array__": True, "shape": [...],
"chunks": {"0": flat array, "1": ...}}. bfloat16 arrays (half-precision TPU runs) are
decoded with ml_dtypes, which TensorFlow already depends on. The file is parsed as a stream
(arrays read straight into their buffers), so a checkpoint costs its arrays' memory once.
"""
import math
import os
import struct

import ml_dtypes
import msgpack
import numpy as np

_NDARRAY, _NATIVE_COMPLEX, _NPSCALAR = 1, 2, 3
_CHUNKED = "__msgpack_chunked_array__"


class NotAFlaxCheckpoint(ValueError):
  """The file is not a flax msgpack checkpoint."""


_MAX_DEPTH = 64                # nesting of maps / arrays; a checkpoint uses a handful
_FIXED = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b", 0xd1: ">h", 0xd2: ">i",
          0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
_LENGTH = {1: ">B", 2: ">H", 4: ">I"}
_FIXEXT = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}


class _Stream:
  """msgpack read from a file one value at a time: arrays are read straight into their numpy
  buffers, so memory is the decoded tree, never the file's bytes as well. Every declared length
  is checked against the bytes left before anything is allocated."""

  def __init__(self, f, size: int, path: str):
    self.f, self.left, self.path = f, size, path

  def bad(self, what: str) -> NotAFlaxCheckpoint:
    return NotAFlaxCheckpoint(f"{self.path} is not a flax msgpack checkpoint: {what}")

  def take(self, n: int) -> bytes:
    if n > self.left:
      raise self.bad(f"a value declares {n} bytes, only {self.left} are left in the file")
    data = self.f.read(n)
    if len(data) != n:
      raise self.bad("the file ended early (changed while reading?)")
    self.left -= n
    return data

  def unpack(self, fmt: str):
    return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

  def value(self, depth: int = 0):
    if depth > _MAX_DEPTH:
      raise self.bad(f"values nested more than {_MAX_DEPTH} deep")
    b = self.take(1)[0]
    if b <= 0x7f or b >= 0xe0:
      return b if b <= 0x7f else b - 0x100
    if 0x80 <= b <= 0x8f or b in (0xde, 0xdf):
      n = b & 0x0f if b <= 0x8f else self.unpack(">H" if b == 0xde else ">I")
      return self.map(n, depth)
    if 0x90 <= b <= 0x9f or b in (0xdc, 0xdd):
      n = b & 0x0f if b <= 0x9f else self.unpack(">H" if b == 0xdc else ">I")
      self.check_count(n)
      return [self.value(depth + 1) for _ in range(n)]
    if 0xa0 <= b <= 0xbf or b in (0xd9, 0xda, 0xdb):
      n = b & 0x1f if b <= 0xbf else self.unpack(_LENGTH[1 << (b - 0xd9)])
      try:
        return self.take(n).decode("utf-8")
      except UnicodeDecodeError:
        raise self.bad("a string that is not UTF-8") from None
    if b in (0xc4, 0xc5, 0xc6):
      return self.take(self.unpack(_LENGTH[1 << (b - 0xc4)]))
    if b in _FIXED:
      return self.unpack(_FIXED[b])
    if b in (0xc7, 0xc8, 0xc9):
      n = self.unpack(_LENGTH[1 << (b - 0xc7)])
      return self.ext(self.unpack(">b"), n)
    if b in _FIXEXT:
      return self.ext(self.unpack(">b"), _FIXEXT[b])
    if b in (0xc0, 0xc2, 0xc3):
      return {0xc0: None, 0xc2: False, 0xc3: True}[b]
    raise self.bad(f"byte 0x{b:02x} starts no msgpack value")

  def check_count(self, n: int) -> None:
    if n > self.left:            # every element takes at least one byte
      raise self.bad(f"a container declares {n} elements, only {self.left} bytes are left")

  def map(self, n: int, depth: int) -> dict:
    self.check_count(n)
    out = {}
    for _ in range(n):
      key = self.value(depth + 1)
      if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
      out[key] = self.value(depth + 1)
    return out

  def ext(self, code: int, n: int):
    if n > self.left:
      raise self.bad(f"an extension value declares {n} bytes, only {self.left} are left")
    if code == _NATIVE_COMPLEX:
      real, imag = msgpack.unpackb(self.take(n))
      return complex(real, imag)
    if code not in (_NDARRAY, _NPSCALAR):
      raise self.bad(f"unknown msgpack extension type {code}")
    end = self.left - n
    header = self.value_of_ext_array()
    shape, dtype, count = header
    if self.left - count != end:
      raise self.bad(f"an array's bytes ({count}) do not fill its extension value ({n} bytes)")
    if count != dtype.itemsize * math.prod(shape):
      raise self.bad(f"an array of shape {shape} and dtype {dtype} with {count} bytes")
    array = np.empty(shape, dtype)
    view = memoryview(array.reshape(-1).view(np.uint8)) if count else None
    if count and (self.f.readinto(view) != count):
      raise self.bad("the file ended early (changed while reading?)")
    self.left -= count
    return array[()] if code == _NPSCALAR else array

  def value_of_ext_array(self):
    """[shape, dtype name, <bin header>] of an array extension: (shape, dtype, byte count); the
    caller reads the bytes."""
    b = self.take(1)[0]
    if b != 0x93:
      raise self.bad("an array extension that is not [shape, dtype, bytes]")
    shape = self.value(1)
    name = self.value(1)
    if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
        or not isinstance(name, (str, bytes))):
      raise self.bad(f"an array extension with shape {shape!r} and dtype {name!r}")
    try:
      dtype = _dtype(name if isinstance(name, bytes) else name.encode("ascii"))
    except (TypeError, ValueError, UnicodeError):
      raise self.bad(f"unknown array dtype {name!r}") from None
    if dtype.hasobject:          # raw bytes are no Python objects
      raise self.bad(f"an array of Python objects (dtype {name!r})")
    b = self.take(1)[0]
    if b not in (0xc4, 0xc5, 0xc6):
      raise self.bad("an array extension whose data is not a byte string")
    return tuple(shape), dtype, self.unpack(_LENGTH[1 << (b - 0xc4)])


def _dtype(name: bytes) -> np.dtype:
  name = name.decode("ascii")
  return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _unchunk(tree):
  if not isinstance(tree, dict):
    return tree
  if tree.get(_CHUNKED) is True:
    chunks = tree["chunks"]
    flat = np.concatenate([chunks[str(i)] for i in range(len(chunks))])
    return flat.reshape(tree["shape"])
  return {key: _unchunk(value) for key, value in tree.items()}


def _what_it_holds(stream: _Stream, size: int) -> str:
  """Says what a file that does not start with a map holds (parsed only when small)."""
  if size > 1 << 20 or not size:
    return "it does not start with a msgpack map of named parameters" if size else "it is empty"
  try:
    kind = type(stream.value()).__name__
  except ValueError:
    return "it does not hold a msgpack value"
  if stream.left:
    return "it does not hold one msgpack value"
  return f"it holds a single {kind}, not a map of named parameters"


def read(path: str) -> dict:
  """The state dict of the checkpoint file `path` ({"params": {...}, ...}).

  Raises NotAFlaxCheckpoint (naming the file and the reason) for anything else:
  a folder (an orbax checkpoint), a file that is not msgpack, or a msgpack document
  that is not a map. The file is streamed (memory: the arrays it holds, once); a file that
  does not start with a map is refused after its first byte, whatever its size.
  """
  if os.path.isdir(path):
    raise NotAFlaxCheckpoint(
        f"{path} is a folder, not a flax msgpack checkpoint file (audax writes single files "
        "named checkpoint_<step> or best_ckpt_<step>; orbax checkpoint folders are not supported)")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint {path} does not exist")
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    first = f.read(1)
    f.seek(0)
    stream = _Stream(f, size, path)
    if not first or not (0x80 <= first[0] <= 0x8f or first[0] in (0xde, 0xdf)):
      raise NotAFlaxCheckpoint(f"{path} is not a flax msgpack checkpoint ({size} bytes): "
                               f"{_what_it_holds(stream, size)}")
    try:
      tree = stream.value()
    except (ValueError, TypeError, struct.error) as e:
      if isinstance(e, NotAFlaxCheckpoint):
        raise
      raise NotAFlaxCheckpoint(f"{path} is not a flax msgpack checkpoint ({size} bytes): "
                               f"{type(e).__name__}: {e}") from None
    if stream.left:
      raise NotAFlaxCheckpoint(f"{path} is not a flax msgpack checkpoint: {stream.left} bytes "
                               "follow its msgpack value")
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
