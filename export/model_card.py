"""OUT/README.md: what the exported model is, how well it did, how to load it."""
import json
from typing import Optional

from export import verify


def _metrics_table(eval_results: Optional[dict]) -> str:
  if not eval_results:
    return "No `eval_results.json` in the workdir (the run was not evaluated).\n"
  rows = ["| evaluation | mAP | mAUC | d′ | clips |", "|---|---|---|---|---|"]
  for key in ("centre_crop", "full_clip"):
    r = eval_results.get(key)
    if r:
      rows.append(f"| {key} | {r.get('mAP', float('nan')):.4f} | "
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
          "(latency: LiteRT, 1 thread, this machine's CPU). Details: `verification.json`.\n\n"
          + "\n".join(rows) + "\n")


def render(*, config, classes, eval_results: Optional[dict], verification: Optional[dict],
           checkpoint: str, num_samples: int, sample_rate: int, min_samples: int,
           multi_label: bool, files: dict) -> str:
  """The model card as Markdown. files: {what: relative path} of what was written."""
  frontend = dict(config.frontend)
  backbone = config.model.backbone
  backbone_args = dict(config.model.get(backbone, {}))
  class_rows = "\n".join(f"| {c['index']} | `{c['id']}` | {c['display_name']} |" for c in classes)
  activation = "sigmoid (multi-label)" if multi_label else "softmax (single-label)"
  listing = "\n".join(f"- `{path}`: {what}" for what, path in files.items())
  tflite_path = files.get("TFLite float32", "tflite/model_float32.tflite")
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
SavedModel: shape [batch, samples] with samples >= {min_samples}; wrong dtype,
rank or length is refused with a message. TFLite: exactly [1, {num_samples}]
(crop or zero-pad).

## Outputs

`scores` [batch, {len(classes)}] ({activation}), `logits`, `embedding` (pooled
backbone features), `features` (frontend output, [batch, frames, {frontend.get('n_filters')}]).

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
scores = hub.KerasLayer("classifier", output_key="scores")(waveform)      # [batch, samples]
# fine-tune for new classes: gradients reach the frontend and the backbone
inputs = tf_keras.Input([{num_samples}])
embedding = hub.KerasLayer("classifier", trainable=True, output_key="embedding")(inputs)
model = tf_keras.Model(inputs, tf_keras.layers.Dense(NUM_NEW_CLASSES)(embedding))
```

Signatures of `tf.saved_model.load("classifier")`: `serving_default` (batch),
`classify_clip` (one 1-D clip), `class_names`, `metadata`. The frontend alone:
`hub.KerasLayer("frontend", trainable=True)` (waveform -> features).

With LiteRT:

```python
from ai_edge_litert import interpreter
runner = interpreter.Interpreter(model_path="{tflite_path}").get_signature_runner("classify")
scores = runner(waveform=clip.reshape(1, {num_samples}).astype("float32"))["scores"]
```

## Classes

| index | id | display name |
|---|---|---|
{class_rows}
"""
