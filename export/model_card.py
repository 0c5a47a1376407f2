"""OUT/README.md: what the exported model is, how well it did, how to load it."""
import json
from typing import Optional

from export import layout
from export import verify
from hub_modules import classifier_module
from hub_modules import reusable
from train.data import input_pipeline


def _metrics_table(eval_results: Optional[dict]) -> str:
  if not eval_results:
    return "No `eval_results.json` in the workdir (the run was not evaluated).\n"
  accuracy = "accuracy" in (eval_results.get("centre_crop") or {})    # a multiclass run
  rows = ["| evaluation |" + (" accuracy |" if accuracy else "") + " mAP | mAUC | d′ | clips |",
          "|---|" + ("---|" if accuracy else "") + "---|---|---|---|"]
  for key in ("centre_crop", "full_clip"):
    r = eval_results.get(key)
    if r:
      rows.append(f"| {key} | " + (f"{r.get('accuracy', float('nan')):.4f} | " if accuracy else "")
                  + f"{r.get('mAP', float('nan')):.4f} | "
                  f"{r.get('mAUC', float('nan')):.4f} | {r.get('dprime', float('nan')):.3f} | "
                  f"{r.get('num_examples', '?')} |")
  step = eval_results.get("step")
  suffix = f"\nFrom `eval_results.json` (step {step}).\n" if step is not None else "\n"
  return "\n".join(rows) + "\n" + suffix


def _verification_table(report: Optional[dict]) -> str:
  if not report:
    return "Not verified.\n"
  rows = ["| model | size | max abs diff (scores) | top-1 agreement | mAP | latency / clip |",
          "|---|---|---|---|---|---|"]
  sizes = report["sizes_bytes"]
  rows.append(f"| Keras (reference) | | | | {verify.format_map(report['keras_mAP'])} | |")
  for name, entry in report["savedmodel"].items():
    rows.append(f"| SavedModel `{name}` | {sizes.get('classifier', 0) / 1e6:.2f} MB | "
                f"{entry['max_abs_diff']['scores']:.2e} | | | |")
  for q, entry in report["tflite"].items():
    rows.append(f"| TFLite {q} | {sizes.get('tflite_' + q, 0) / 1e6:.2f} MB | "
                f"{entry['max_abs_diff']['scores']:.2e} | {entry['top1_agreement']:.3f} | "
                f"{verify.format_map(entry['mAP'], entry['mAP_change'])} | "
                f"{entry['latency_ms_per_clip']:.1f} ms |")
  return (f"On {report['num_clips']} eval clips of {report['clip_samples']} samples "
          "(latency: LiteRT, 1 thread, this machine's CPU). Details: "
          f"`{layout.ExportLayout('').verification}`.\n\n"
          + "\n".join(rows) + "\n")


def render(*, config, classes, eval_results: Optional[dict], verification: Optional[dict],
           checkpoint: str, num_samples: int, sample_rate: int, min_samples: int,
           multi_label: bool, files: dict) -> str:
  """The model card as Markdown. files: {what: relative path} of what was written."""
  frontend = dict(config.frontend)
  backbone = config.model.backbone
  backbone_args = dict(config.model.get(backbone, {}))
  class_rows = "\n".join(f"| {c['index']} | `{c['id']}` | {c['display_name']} |" for c in classes)
  activation = classifier_module.activation_name(multi_label)
  listing = "\n".join(f"- `{path}`: {what}" for what, path in files.items())
  # the usage snippets name the float models also when this export has none (another run's)
  names = layout.ExportLayout("")
  tflite_path = files.get("TFLite float32", names.tflite("float"))
  task_path = files.get("MediaPipe AudioClassifier float32", names.task_model("float"))
  task_file = task_path.split("/")[-1]
  task_stem = task_file.rsplit(".", 1)[0]
  window_samples = input_pipeline.crop_length_samples(config.dataset.crop_seconds, sample_rate)
  max_clip_samples = max(classifier_module.MAX_CLIP_SECONDS * sample_rate, window_samples)
  max_abs = reusable.MAX_ABS_AMPLITUDE
  return f"""# {frontend['name']} + {backbone} audio classifier

Exported by `python -m export.main` from checkpoint `{checkpoint}`.

## Model

- Frontend: `tf_frontends.get({frontend['name']!r}, ...)` with `{json.dumps(frontend)}`
- Backbone: tf-models-official `{backbone}` `{json.dumps(backbone_args)}` on the
  [frames, filters, 1] feature image, global average pooling, dropout
  {config.model.dropout}, dense head; scores: {activation}.
- Trained with crops of {config.dataset.crop_seconds} s, batch {config.batch_size},
  base learning rate {config.optimizer.base_learning_rate}; data `{config.dataset.data_dir}`.

## Input

float32 waveform, mono, {sample_rate} Hz, values in [-1, 1] (int16 PCM / 32768).
SavedModel: shape [batch, samples] with {min_samples} <= samples <= {max_clip_samples}
(one pass over the clip; longer audio goes through `frame_scores`). A wrong dtype,
rank ([batch, samples, 1] included) or length, an empty batch, NaN / infinite samples
or values far outside [-1, 1] (|x| > {max_abs:g}, e.g. int16 PCM passed as float) are
refused with a message saying which. TFLite: exactly [1, {num_samples}] (crop or
zero-pad; the length is also in each model's metadata). A TFLite model cannot raise: for
NaN / infinite / |x| > {max_abs:g} input it returns all-zero outputs (never a confident
score); `export.tflite.TFLiteRunner` refuses such input, and a wrong length, with a message.

## Outputs

`scores` [batch, {len(classes)}] ({activation}), `logits`, `embedding` (pooled
backbone features), `features` (frontend output, [batch, frames, {frontend.get('n_filters')}]).

Frame-level scores (as YAMNet): the `frame_scores` signature takes one waveform
[samples] of any length >= {window_samples} and scores windows of {window_samples}
samples ({window_samples / sample_rate:g} s, the training crop) every {window_samples // 2}
samples (half a window): `scores` / `logits` [frames, {len(classes)}], `embedding`
[frames, D]; frame i covers samples [i * {window_samples // 2}, i * {window_samples // 2} + {window_samples}),
the last one zero-padded. Memory stays bounded whatever the length (windows are scored a
chunk at a time). Window and hop are in the `metadata` signature; `class_map_path()`
gives the class CSV:

```python
import csv, numpy as np, tensorflow as tf
model = tf.saved_model.load("{names.classifier}")
frames = model.signatures["frame_scores"](waveform=tf.constant(waveform))["scores"].numpy()
clip_scores = frames.mean(axis=0)          # the clip prediction (the full-clip evaluation's)
with open(model.class_map_path().numpy().decode()) as f:
  names = [row["display_name"] for row in csv.DictReader(f)]
print(names[int(np.argmax(clip_scores))])
```

## Evaluation

{_metrics_table(eval_results)}
## Export verification

{_verification_table(verification)}
## Files

{listing}

## Use

With TF-Hub (set `TF_USE_LEGACY_KERAS=1` before importing TensorFlow):

```python
import tensorflow_hub as hub, tf_keras
scores = hub.KerasLayer("{names.classifier}", output_key="scores")(waveform)      # [batch, samples]
# fine-tune for new classes: gradients reach the frontend and the backbone
inputs = tf_keras.Input([{num_samples}])
embedding = hub.KerasLayer("{names.classifier}", trainable=True, output_key="embedding")(inputs)
model = tf_keras.Model(inputs, tf_keras.layers.Dense(NUM_NEW_CLASSES)(embedding))
```

Signatures of `tf.saved_model.load("{names.classifier}")`: `serving_default` (batch),
`classify_clip` (one 1-D clip), `frame_scores` (per window, any length), `class_names`,
`metadata`. The frontend alone:
`hub.KerasLayer("{names.frontend}", trainable=True)` (waveform -> features).

With Keras 3 (TensorFlow 2.16+ without `TF_USE_LEGACY_KERAS`): inference through
`TFSMLayer` (for fine-tuning use tf_keras and `hub.KerasLayer` as above):

```python
import keras
layer = keras.layers.TFSMLayer("{names.classifier}", call_endpoint="serving_default")
scores = layer(waveform)["scores"]                       # waveform [batch, samples]
features = keras.layers.TFSMLayer("{names.frontend}", call_endpoint="serving_default")(waveform)["features"]
```

With LiteRT:

```python
from ai_edge_litert import interpreter
runner = interpreter.Interpreter(model_path="{tflite_path}").get_signature_runner("classify")
scores = runner(waveform=clip.reshape(1, {num_samples}).astype("float32"))["scores"]
```

## On device: MediaPipe Tasks AudioClassifier

`{task_path}` (and the int8 / dynamic-range variants beside it) are MediaPipe-ready: one
float32 input [1, {num_samples}], one output (the scores), TFLite Model Metadata with
AudioProperties ({sample_rate} Hz, 1 channel) and the labels (`labels.txt`, packed in the
model). MediaPipe resamples the audio you give it to {sample_rate} Hz and, in stream mode,
scores each block of {num_samples} samples ({num_samples / sample_rate:g} s, no overlap).

Python (`pip install mediapipe`; its own environment: it needs absl-py >= 2.3):

```python
import numpy as np
from mediapipe.tasks import python as mp_python
from mediapipe.tasks.python import audio
from mediapipe.tasks.python.components.containers.audio_data import AudioData
options = audio.AudioClassifierOptions(
    base_options=mp_python.BaseOptions(model_asset_path="{task_path}"), max_results=3)
with audio.AudioClassifier.create_from_options(options) as classifier:
  results = classifier.classify(AudioData.create_from_array(clip.astype(np.float64), {sample_rate}))
  for result in results:                   # one per {num_samples / sample_rate:g} s of audio
    print([(c.category_name, round(c.score, 3)) for c in result.classifications[0].categories])
```

Android (Kotlin; `implementation("com.google.mediapipe:tasks-audio:<version>")`, the model
in `src/main/assets/`):

```kotlin
val options = AudioClassifier.AudioClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{task_file}").build())
    .setRunningMode(RunningMode.AUDIO_CLIPS).setMaxResults(3).build()
val classifier = AudioClassifier.createFromOptions(context, options)
val format = AudioData.AudioDataFormat.builder().setNumOfChannels(1).setSampleRate({sample_rate}f).build()
val data = AudioData.create(format, samples.size).apply {{ load(samples) }}   // FloatArray in [-1, 1]
val top = classifier.classify(data).classificationResults()[0].classifications()[0].categories()[0]
```
For the microphone use `RunningMode.AUDIO_STREAM` with a result listener and
`classifier.createAudioRecord(1, {sample_rate}, {num_samples})`.

iOS (Swift; CocoaPods `MediaPipeTasksAudio`):

```swift
let options = AudioClassifierOptions()
options.baseOptions.modelAssetPath = Bundle.main.path(forResource: "{task_stem}", ofType: "tflite")!
options.runningMode = .audioClips
options.maxResults = 3
let classifier = try AudioClassifier(options: options)
let data = AudioData(format: AudioDataFormat(channelCount: 1, sampleRate: {sample_rate}),
                     sampleCount: UInt({num_samples}))
try data.load(buffer: pcmBuffer)            // an AVAudioPCMBuffer, float32 mono
let result = try classifier.classify(audioClip: data)
```

## Classes

| index | id | display name |
|---|---|---|
{class_rows}
"""
