"""The on-disk record layouts: ours (written by prepare_data, read by input_pipeline) and audax's.

Ours, one tf.train.Example per clip:
  audio   bytes      16-bit PCM mono WAV at the dataset's sample rate (tf.audio.decode_wav in the graph)
  labels  int64 list class indices into dataset_info.json's "classes"
  id      bytes      unique example id (AudioSet: the YTID)
  event_labels, event_start_s, event_end_s   int64 / float lists, optional: strong labels, one
                     entry per span in which a class is audible (the demo set has them; AudioSet
                     keeps clip-level labels only)

audax (the seed recipe), possibly ZLIB- or GZIP-compressed files:
  audio   bytes      an encoded file (FLAC usually; WAV / OGG too) or, in its "v2" layout, a serialized
                     float32 tensor (tf.io.serialize_tensor) at a sample rate the record does not store
  label   int64 list class indices
  duration int64     (ignored)
audax records are converted at prep time (`prepare_data --audax_tfrecords=...`): the FLAC is decoded with
soundfile in the prep workers, because TF has no in-graph FLAC decoder without tensorflow-io.
"""
import collections
import os
from typing import Iterable, Iterator, Sequence

import tensorflow as tf

FEATURES = {
    "audio": tf.io.FixedLenFeature([], tf.string),
    "labels": tf.io.VarLenFeature(tf.int64),
    "id": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "event_labels": tf.io.VarLenFeature(tf.int64),
    "event_start_s": tf.io.VarLenFeature(tf.float32),
    "event_end_s": tf.io.VarLenFeature(tf.float32),
}
# A record of an audax file, read lazily at conversion time (records are not held in memory).
AudaxRecord = collections.namedtuple("AudaxRecord", ["path", "index", "compression"])
_ENCODED_MAGIC = (b"fLaC", b"RIFF", b"OggS", b"ID3", b"FORM", b".snd")


def _ints(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
    n >>= 7
    if not n:
      return bytes(out)


def _length_delimited(field_byte: int, length: int) -> bytes:
  """The header of a length-delimited protobuf field (wire type 2) of `length` bytes."""
  return bytes([field_byte]) + _varint(length)


def make_example(wav_bytes: bytes, labels: Sequence[int], example_id: str,
                 events: Sequence[tuple] = ()) -> bytes:
  """-> serialized tf.train.Example in our layout; events: ((class index, start_s, end_s), ...).

  The bytes of `Example.SerializeToString(deterministic=True)` (map entries sorted by key, so
  "audio" first), with the audio spliced in by hand: the clip is copied once, not into a
  message and again out of it (prep memory for long clips).
  """
  feature = {
      "labels": _ints(labels),
      "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example_id.encode("utf-8")])),
  }
  if events:
    feature["event_labels"] = _ints(label for label, _, _ in events)
    feature["event_start_s"] = _floats(start for _, start, _ in events)
    feature["event_end_s"] = _floats(end for _, _, end in events)
  rest = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
      deterministic=True)                                  # map order fixed across processes
  # rest = Example{features (1): Features{feature (1): entries}}; skip its two headers
  _, after = _read_varint(rest, 1)
  entries = rest[after:]
  # Features.feature entry "audio": {key (1): "audio", value (2): Feature{bytes_list (1):
  # BytesList{value (1): wav}}}
  bytes_list = _length_delimited(0x0A, len(wav_bytes))
  feature_len = len(bytes_list) + len(wav_bytes)
  value = _length_delimited(0x0A, feature_len)
  key = _length_delimited(0x0A, 5) + b"audio"
  entry_len = len(key) + 1 + len(_varint(len(value) + feature_len)) + len(value) + feature_len
  audio_head = (_length_delimited(0x0A, entry_len) + key
                + _length_delimited(0x12, len(value) + feature_len) + value + bytes_list)
  features_len = len(audio_head) + len(wav_bytes) + len(entries)
  return b"".join((_length_delimited(0x0A, features_len), audio_head, wav_bytes, entries))


def _read_varint(data: bytes, pos: int) -> tuple:
  """(value, position after it) of the varint at data[pos]."""
  value, shift = 0, 0
  while True:
    byte = data[pos]
    value |= (byte & 0x7F) << shift
    pos, shift = pos + 1, shift + 7
    if byte < 0x80:
      return value, pos


def parse_example(serialized: tf.Tensor) -> dict:
  """Graph op: serialized Example -> {"audio": bytes scalar, "labels": int64 [n], "id": string,
  "event_labels": int64 [e], "event_start_s", "event_end_s": float32 [e]} (e = 0: no strong labels)."""
  parsed = tf.io.parse_single_example(serialized, FEATURES)
  for key in ("labels", "event_labels", "event_start_s", "event_end_s"):
    parsed[key] = tf.sparse.to_dense(parsed[key])
  return parsed


# Suffix of the files data prep writes before renaming them: unique to this project, so the
# clean-up of a killed run's leftovers never touches a user's own *.tmp files.
TMP_SUFFIX = ".tf_frontends-partial"


def write_shard(path: str, records: Iterable[bytes]) -> None:
  """Writes `path` atomically: a killed run leaves `path` + TMP_SUFFIX, never a short `path`.
  `records` may be a generator: each record is written as it comes."""
  tmp = path + TMP_SUFFIX
  with tf.io.TFRecordWriter(tmp) as writer:
    for record in records:
      writer.write(record)
  os.replace(tmp, path)


def detect_compression(path: str) -> str:
  """'' | 'ZLIB' | 'GZIP': the first type under which the file's first record reads cleanly."""
  for compression in ("", "ZLIB", "GZIP"):
    try:
      for _ in tf.data.TFRecordDataset(path, compression_type=compression).take(1):
        pass
      return compression
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
      continue
  raise ValueError(f"{path}: not a TFRecord file (tried uncompressed, ZLIB and GZIP)")


def read_audax(path: str, compression: str = "auto") -> Iterator[tuple]:
  """Yields (record_index, audio, labels, error) per record of an audax-layout file.

  audio is encoded bytes, or a float32 numpy array for serialized tensors; error is a skip
  reason (then audio is None). A corrupt tail ends the iteration with one error tuple.
  """
  if compression == "auto":
    compression = detect_compression(path)
  index = -1
  try:
    for index, record in enumerate(tf.data.TFRecordDataset(path, compression_type=compression)):
      try:
        example = tf.train.Example.FromString(record.numpy())
      except Exception:  # noqa: BLE001  (protobuf raises its own DecodeError)
        yield index, None, (), "not a tf.train.Example"
        continue
      feature = example.features.feature
      labels = tuple(feature["label"].int64_list.value) if "label" in feature else ()
      audio = feature["audio"].bytes_list.value if "audio" in feature else []
      if not audio:
        yield index, None, labels, "no 'audio' bytes feature"
        continue
      payload = audio[0]
      if payload[:4] in _ENCODED_MAGIC or payload[:2] in (b"\xff\xfb", b"\xff\xf3"):
        yield index, payload, labels, None
        continue
      try:
        samples = tf.io.parse_tensor(payload, tf.float32).numpy().reshape(-1)
      except (tf.errors.InvalidArgumentError, ValueError):
        yield index, None, labels, "audio bytes are neither an audio file nor a float32 tensor"
        continue
      yield index, samples, labels, None
  except tf.errors.DataLossError as e:
    yield index + 1, None, (), f"corrupt record ({e.message.splitlines()[0][:80]})"


class AudaxReader:
  """Resolves AudaxRecord references, reading each file sequentially (reopened on a step back)."""

  def __init__(self):
    self._streams = {}                 # path -> (generator, index of its next record)

  def __call__(self, ref: AudaxRecord):
    """-> encoded bytes or a float32 array; None if the record is unreadable now."""
    stream, next_index = self._streams.get(ref.path, (None, None))
    if stream is None or ref.index < next_index:
      stream, next_index = read_audax(ref.path, ref.compression), 0
    for index, audio, _, _ in stream:
      self._streams[ref.path] = (stream, index + 1)
      if index == ref.index:
        return audio
    self._streams.pop(ref.path, None)
    return None
