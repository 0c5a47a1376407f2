"""TFLite Model Metadata for MediaPipe Tasks' AudioClassifier, written with flatbuffers.

    classify, task = add_metadata(model, classes=classes, name=..., ...)

`task` is the MediaPipe-ready model (one input, one output: the scores);
`classify` keeps every output. Both carry the metadata (input length included)
and the labels.

The layout follows the public metadata schema (tflite-support's
`metadata_schema.fbs`, file identifier "M001"): each table below lists its
fields in schema order, so a field's position is its vtable slot; a union field
takes two slots (its type byte, then the table). The metadata travels in the
model's `metadata` list under the name "TFLITE_METADATA" (pointing at a buffer
that holds it); associated files (the labels) are stored, uncompressed, in a zip
archive appended to the model, which readers locate from the end of the file.
"""
import io
import zipfile
from typing import Dict, Sequence

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from hub_modules import classifier_module
from hub_modules.reusable import MAX_ABS_AMPLITUDE

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
# The oldest parser that knows every field written here: AudioProperties came
# with schema 1.3.0.
MIN_PARSER_VERSION = "1.3.0"
LABELS_FILE = "labels.txt"

# Enum and union values of metadata_schema.fbs.
TENSOR_AXIS_LABELS = 2                          # AssociatedFileType
FEATURE_PROPERTIES, AUDIO_PROPERTIES = 1, 4     # ContentProperties union types


class _Builder:
  """flatbuffers.Builder with helpers for strings, vectors and tables by slot."""

  def __init__(self):
    self.builder = flatbuffers.Builder(1024)

  def string(self, text: str) -> int:
    return self.builder.CreateString(text)

  def vector(self, offsets: Sequence[int]) -> int:
    self.builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
      self.builder.PrependUOffsetTRelative(offset)
    return self.builder.EndVector()

  def table(self, num_slots: int, fields: Dict[int, tuple]) -> int:
    """fields: {slot: (kind, value)}, kind "offset" | "uint8" | "int8" | "uint32".

    Children (strings, vectors, tables) must be built before the table.
    """
    prepend = {"offset": self.builder.PrependUOffsetTRelativeSlot,
               "uint8": self.builder.PrependUint8Slot,
               "int8": self.builder.PrependInt8Slot,
               "uint32": self.builder.PrependUint32Slot}
    self.builder.StartObject(num_slots)
    for slot, (kind, value) in sorted(fields.items()):
      prepend[kind](slot, value, 0)
    return self.builder.EndObject()

  def finish(self, root: int) -> bytes:
    self.builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(self.builder.Output())


def _associated_file(b: _Builder, name: str, description: str, file_type: int) -> int:
  # AssociatedFile: name, description, type, locale, version
  name, description = b.string(name), b.string(description)
  return b.table(5, {0: ("offset", name), 1: ("offset", description),
                     2: ("int8", file_type)})


def _tensor(b: _Builder, name: str, description: str, content: int,
            files: Sequence[int] = ()) -> int:
  # TensorMetadata: name, description, dimension_names, content, process_units,
  # stats, associated_files
  name, description = b.string(name), b.string(description)
  fields = {0: ("offset", name), 1: ("offset", description), 3: ("offset", content)}
  if files:
    fields[6] = ("offset", b.vector(files))
  return b.table(7, fields)


def _content(b: _Builder, union_type: int, properties: int) -> int:
  # Content: content_properties (type byte, table), range
  return b.table(3, {0: ("uint8", union_type), 1: ("offset", properties)})


def audio_classifier_metadata(*, name: str, description: str, version: str, author: str,
                              license_text: str, sample_rate: int, num_samples: int,
                              outputs: Sequence[tuple]) -> bytes:
  """The ModelMetadata flatbuffer of an audio classifier with input [1, num_samples].

  Input: AudioProperties (sample_rate, 1 channel) and a description that gives
  the length. outputs: (name, description) per output tensor, in the order of
  the subgraph's outputs; the "scores" output gets LABELS_FILE as its
  TENSOR_AXIS_LABELS file.
  """
  b = _Builder()
  # AudioProperties: sample_rate, channels
  audio = b.table(2, {0: ("uint32", int(sample_rate)), 1: ("uint32", 1)})
  waveform = _tensor(
      b, "waveform",
      f"float32 [1, {num_samples}]: exactly {num_samples} mono samples "
      f"({num_samples / sample_rate:g} s) at {sample_rate} Hz in [-1, 1]. NaN, infinite or "
      f"int16-scale input (|x| > {MAX_ABS_AMPLITUDE:g}) gives all-zero outputs.",
      _content(b, AUDIO_PROPERTIES, audio))
  output_tables = []
  for output_name, output_description in outputs:
    files = []
    if output_name == "scores":
      files = [_associated_file(b, LABELS_FILE, "Class display names, one per line, in "
                                "the order of the scores.", TENSOR_AXIS_LABELS)]
    feature = b.table(0, {})
    output_tables.append(_tensor(b, output_name, output_description,
                                 _content(b, FEATURE_PROPERTIES, feature), files))
  # SubGraphMetadata: name, description, input_tensor_metadata, output_tensor_metadata, ...
  subgraph_name = b.string(name)
  inputs_vector, outputs_vector = b.vector([waveform]), b.vector(output_tables)
  subgraph = b.table(10, {0: ("offset", subgraph_name), 2: ("offset", inputs_vector),
                          3: ("offset", outputs_vector)})
  # ModelMetadata: name, description, version, subgraph_metadata, author, license,
  # associated_files, min_parser_version
  subgraphs = b.vector([subgraph])
  strings = [b.string(s) for s in (name, description, version, author, license_text,
                                   MIN_PARSER_VERSION)]
  root = b.table(8, {0: ("offset", strings[0]), 1: ("offset", strings[1]),
                     2: ("offset", strings[2]), 3: ("offset", subgraphs),
                     4: ("offset", strings[3]), 5: ("offset", strings[4]),
                     7: ("offset", strings[5])})
  return b.finish(root)


def labels_text(classes: Sequence[dict]) -> bytes:
  """One display name per line, in class-index order (newlines in names become spaces)."""
  names = [" ".join(str(c["display_name"]).split())
           for c in sorted(classes, key=lambda c: int(c["index"]))]
  return ("\n".join(names) + "\n").encode("utf-8")


def _model_object(model: bytes):
  return flatbuffer_utils.convert_bytearray_to_object(bytearray(model))


def _to_bytes(model_object) -> bytes:
  return flatbuffer_utils.convert_object_to_bytearray(model_object)


def with_metadata(model: bytes, metadata: bytes, files: Dict[str, bytes]) -> bytes:
  """The model with `metadata` as its TFLITE_METADATA and `files` zipped after it.

  Replaces metadata and files the model already had.
  """
  model_object = _model_object(model)
  kept = [m for m in (model_object.metadata or [])
          if _text(m.name) != METADATA_NAME]
  buffer = schema.BufferT()
  buffer.data = np.frombuffer(metadata, np.uint8)
  model_object.buffers.append(buffer)
  entry = schema.MetadataT()
  entry.name = METADATA_NAME
  entry.buffer = len(model_object.buffers) - 1
  model_object.metadata = kept + [entry]
  stream = io.BytesIO(_to_bytes(model_object))   # without any zip the model had
  with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
    for name, content in files.items():
      archive.writestr(name, content)
  return stream.getvalue()


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def scores_only(model: bytes, output: str = "scores") -> bytes:
  """The model with one output, the signature output named `output`; dead ops removed.

  MediaPipe treats every output of an audio classifier as a classification
  head, so the task model keeps the scores alone. The other outputs of our
  models (features, embedding, logits) are steps on the way to the scores, so
  only the ops that merely emitted them (e.g. int8 DEQUANTIZE) go.
  """
  model_object = _model_object(model)
  if len(model_object.subgraphs) != 1 or len(model_object.signatureDefs or []) != 1:
    raise ValueError("scores_only expects a model with one subgraph and one signature.")
  signature = model_object.signatureDefs[0]
  chosen = [t for t in signature.outputs if _text(t.name) == output]
  if not chosen:
    names = sorted(_text(t.name) for t in signature.outputs)
    raise ValueError(f"The model has no output named {output!r}; it has {names}.")
  signature.outputs = chosen
  subgraph = model_object.subgraphs[0]
  subgraph.outputs = np.array([chosen[0].tensorIndex], np.int32)
  while True:                                  # drop ops whose outputs nobody reads
    read = {int(i) for op in subgraph.operators for i in op.inputs} | {chosen[0].tensorIndex}
    live = [op for op in subgraph.operators if any(int(i) in read for i in op.outputs)]
    if len(live) == len(subgraph.operators):
      break
    subgraph.operators = live
  return _to_bytes(model_object)


def output_names(model: bytes) -> list:
  """Signature names of the model's outputs, in the subgraph's output order."""
  model_object = _model_object(model)
  by_index = {t.tensorIndex: _text(t.name) for t in model_object.signatureDefs[0].outputs}
  return [by_index[int(i)] for i in model_object.subgraphs[0].outputs]


OUTPUT_DESCRIPTIONS = {
    "scores": "float32 [1, {num_classes}] class scores, {activation}.",
    "logits": "float32 [1, {num_classes}] logits.",
    "embedding": "float32 [1, D] pooled backbone features (before the head).",
    "features": "float32 [1, frames, filters] frontend output.",
}


def add_metadata(model: bytes, *, classes: Sequence[dict], name: str, description: str,
                 version: str, sample_rate: int, num_samples: int, multi_label: bool,
                 author: str = "tf-frontends export",
                 license_text: str = "Apache-2.0 for the code; the weights follow the "
                                     "training data's terms") -> tuple:
  """(the model with metadata and labels, the MediaPipe task model: scores only)."""
  fields = {"num_classes": len(classes),
            "activation": classifier_module.activation_name(multi_label)}
  common = dict(name=name, description=description, version=version, author=author,
                license_text=license_text, sample_rate=sample_rate, num_samples=num_samples)
  files = {LABELS_FILE: labels_text(classes)}

  def described(names):
    return [(n, OUTPUT_DESCRIPTIONS.get(n, "").format(**fields)) for n in names]

  classify = with_metadata(model, audio_classifier_metadata(
      outputs=described(output_names(model)), **common), files)
  task = scores_only(model)
  task = with_metadata(task, audio_classifier_metadata(
      outputs=described(["scores"]), **common), files)
  return classify, task
