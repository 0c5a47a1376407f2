"""Loads TFLite models in MediaPipe's AudioClassifier; run by .venv-mediapipe/bin/python.

python mediapipe_check.py CLIPS.npy SAMPLE_RATE MODEL.tflite [MODEL.tflite ...]

Nothing of tf-frontends is importable here (its own venv): the metadata is read
back with MediaPipe's own generated schema classes, independently of our writer.
Prints one line "RESULT <json>": per model, the metadata fields, the packed
labels, and the score vectors of every clip in clip mode and in stream mode.
"""
import io
import json
import sys
import threading
import zipfile

import numpy as np
from mediapipe.tasks import python as mp_python
from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_schema
from mediapipe.tasks.metadata import schema_py_generated as tflite_schema
from mediapipe.tasks.python import audio
from mediapipe.tasks.python.components.containers import audio_data as audio_data_lib

STREAM_CHUNK_SAMPLES = 4000      # fed in pieces smaller than the model's window


def read_metadata(buffer: bytes) -> dict:
  model = tflite_schema.Model.GetRootAs(buffer, 0)
  entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
             for i in range(model.MetadataLength())}
  raw = model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes()
  assert metadata_schema.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0)
  meta = metadata_schema.ModelMetadata.GetRootAs(raw, 0)
  subgraph = meta.SubgraphMetadata(0)
  waveform = subgraph.InputTensorMetadata(0)
  content = waveform.Content()
  audio_properties = metadata_schema.AudioProperties()
  table = content.ContentProperties()
  audio_properties.Init(table.Bytes, table.Pos)
  outputs = [subgraph.OutputTensorMetadata(i) for i in range(subgraph.OutputTensorMetadataLength())]
  label_files = [(o.AssociatedFiles(j).Name().decode(), o.AssociatedFiles(j).Type())
                 for o in outputs for j in range(o.AssociatedFilesLength())]
  with zipfile.ZipFile(io.BytesIO(buffer)) as archive:
    packed = {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
  subgraph_inputs = model.Subgraphs(0).InputsAsNumpy()
  input_shape = model.Subgraphs(0).Tensors(int(subgraph_inputs[0])).ShapeAsNumpy().tolist()
  return {"name": meta.Name().decode(), "description": meta.Description().decode(),
          "version": meta.Version().decode(), "author": meta.Author().decode(),
          "license": meta.License().decode(),
          "min_parser_version": meta.MinParserVersion().decode(),
          "input_name": waveform.Name().decode(),
          "input_description": waveform.Description().decode(),
          "input_content_type": content.ContentPropertiesType(),
          "sample_rate": audio_properties.SampleRate(),
          "channels": audio_properties.Channels(),
          "input_shape": input_shape,
          "num_subgraphs": model.SubgraphsLength(),
          "outputs": [o.Name().decode() for o in outputs],
          "label_files": label_files, "packed_files": packed}


def score_vector(result, num_classes: int) -> list:
  scores = [None] * num_classes
  for category in result.classifications[0].categories:
    scores[category.index] = category.score
  return scores


def classify_clips(buffer: bytes, clips: np.ndarray, sample_rate: int, num_classes: int):
  options = audio.AudioClassifierOptions(
      base_options=mp_python.BaseOptions(model_asset_buffer=buffer))
  with audio.AudioClassifier.create_from_options(options) as classifier:
    return [score_vector(classifier.classify(audio_data_lib.AudioData.create_from_array(
        clip.astype(np.float64), sample_rate))[0], num_classes) for clip in clips]


def classify_stream(buffer: bytes, clips: np.ndarray, sample_rate: int, num_classes: int):
  """The clips back to back as one stream; MediaPipe scores each window of N samples."""
  results, done = [], threading.Event()

  def on_result(result, timestamp_ms):
    del timestamp_ms
    results.append(score_vector(result, num_classes))
    if len(results) == len(clips):
      done.set()

  options = audio.AudioClassifierOptions(
      base_options=mp_python.BaseOptions(model_asset_buffer=buffer),
      running_mode=audio.RunningMode.AUDIO_STREAM, result_callback=on_result)
  stream = clips.reshape(-1).astype(np.float64)
  with audio.AudioClassifier.create_from_options(options) as classifier:
    for start in range(0, len(stream), STREAM_CHUNK_SAMPLES):
      chunk = stream[start:start + STREAM_CHUNK_SAMPLES]
      data = audio_data_lib.AudioData.create_from_array(chunk, sample_rate)
      classifier.classify_async(data, int(round(1000 * start / sample_rate)))
    done.wait(timeout=120)
  return results


def main():
  clips_path, sample_rate, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
  clips = np.load(clips_path)
  result = {}
  for path in models:
    with open(path, "rb") as f:
      buffer = f.read()
    entry = {}
    try:
      entry["metadata"] = read_metadata(buffer)
      num_classes = len(entry["metadata"]["packed_files"]["labels.txt"].splitlines())
      entry["clip_scores"] = classify_clips(buffer, clips, sample_rate, num_classes)
      entry["stream_scores"] = classify_stream(buffer, clips, sample_rate, num_classes)
    except Exception as e:  # reported to the test, which shows the message
      entry["error"] = f"{type(e).__name__}: {e}"
    result[path] = entry
  print("RESULT " + json.dumps(result))


if __name__ == "__main__":
  main()
