"""A trained frontend + classifier as a reusable, fine-tunable TF-Hub module.

    save_classifier_module(model, classes, "/tmp/leaf_classifier")

    # inference
    scores = hub.KerasLayer("/tmp/leaf_classifier", output_key="scores")(waveform)
    # fine-tuning for new classes: gradients reach the frontend and the backbone
    embed = hub.KerasLayer("/tmp/leaf_classifier", trainable=True, output_key="embedding")
    logits = tf_keras.layers.Dense(num_new_classes)(embed(waveform))

`__call__(inputs, training=False)` and the signatures return a dict:
  scores    [batch, C]  sigmoid (multi-label) or softmax (single-label) of logits
  logits    [batch, C]
  embedding [batch, D]  pooled backbone features (before dropout and the head)
  features  [batch, frames, n_filters]  the frontend's output
Signatures:
  serving_default: waveform float32 [batch, samples] -> the dict above
  classify_clip:   waveform float32 [samples]        -> the dict without the batch axis
  frame_scores:    waveform float32 [samples], any length >= one window ->
                   {"scores" [frames, C], "logits" [frames, C], "embedding" [frames, D]}
                   per window (as YAMNet): window = the training crop, hop = half of it;
                   frame i covers samples [i * hop, i * hop + window), the last one
                   zero-padded at the end. Memory stays bounded whatever the length.
  class_names:     () -> {"index" int64 [C], "id" string [C], "display_name" string [C]}
  metadata:        () -> {"sample_rate", "min_samples", "max_samples", "window_samples",
                          "hop_samples", "num_classes", "multi_label"}
serving_default and classify_clip take clips of min_samples..max_samples
samples (one pass over the whole clip, so memory grows with length); longer audio
goes through frame_scores. `class_map_path()` returns the path of the class CSV
(YAMNet's method). The class names live in assets/class_names.csv
(index,id,display_name), so they travel with the directory when it is copied.
"""
import shutil
from typing import Optional, Sequence

import tensorflow as tf

from hub_modules import reusable

FRAME_KEYS = ("scores", "logits", "embedding")
# serving_default / classify_clip score a clip in one pass: EfficientNet-B0's
# activations take ~0.7 GB per minute of audio.
MAX_CLIP_SECONDS = 60
# frame_scores runs this much audio through the model at a time.
CHUNK_SECONDS = 10


def default_classes(num_classes: int) -> list:
  return [{"index": i, "id": f"class_{i}", "display_name": f"class {i}"}
          for i in range(num_classes)]


def activation_name(multi_label: bool) -> str:
  """How scores come from logits (AudioClassifier.scores), as model cards and metadata say it."""
  return ("sigmoid (multi-label: each class scored on its own)" if multi_label
          else "softmax (single-label: a clip's scores sum to 1)")


def classifier_outputs(model, waveform, training=False) -> dict:
  """The module's output dict from an AudioClassifier (train.models contract)."""
  outputs = model.compute_outputs(waveform, training=training)
  logits = outputs["logits"]
  return {"scores": model.scores(logits), "logits": logits,
          "embedding": outputs["embedding"], "features": outputs["features"]}


class ClassifierModule(reusable.ReusableModule):
  """Wraps an AudioClassifier: waveform [batch, samples] -> scores, logits, embedding, features."""

  def __init__(self, model, class_names_csv: str, *,
               min_samples: Optional[int] = None, window_samples: Optional[int] = None,
               name: Optional[str] = None):
    """model: a built AudioClassifier; class_names_csv: path of the asset CSV;
    window_samples: the frame_scores window, the training crop (default: 1 s)."""
    frontend = model.frontend
    sample_rate = int(frontend.sample_rate)
    window_samples = int(window_samples or sample_rate)
    super().__init__(
        model,
        min_samples=min_samples or frontend.min_samples,
        sample_rate=sample_rate,
        max_samples=max(MAX_CLIP_SECONDS * sample_rate, window_samples), name=name)
    if window_samples < self._min_samples:
      raise ValueError(f"window_samples {window_samples} is shorter than one analysis "
                       f"window of the frontend ({self._min_samples} samples).")
    self._window_samples = window_samples
    self._hop_samples = max(1, window_samples // 2)
    self._frames_what = (f"float32 waveform of shape [samples] at {sample_rate} Hz in "
                         f"[-1, 1], with samples >= {window_samples} (one window)")
    self._frames_per_chunk = max(1, CHUNK_SECONDS * sample_rate // window_samples)
    object.__setattr__(self, "model", model)  # untracked: see ReusableModule
    self._num_classes = int(model.num_classes)
    self._multi_label = bool(model.multi_label)
    self._output_bins = int(frontend.output_bins)
    self.class_names_file = tf.saved_model.Asset(class_names_csv)
    # The embedding width, for shapes of the (never returned) error outputs.
    probe = classifier_outputs(model, tf.zeros([1, self._min_samples]))
    self._embedding_size = int(probe["embedding"].shape[-1])

  def _forward(self, waveform, training):
    return classifier_outputs(self.model, waveform, training=training)

  def _error_outputs(self):
    return {"scores": tf.zeros([0, self._num_classes]),
            "logits": tf.zeros([0, self._num_classes]),
            "embedding": tf.zeros([0, self._embedding_size]),
            "features": tf.zeros([0, 0, self._output_bins])}

  @tf.function(input_signature=[])
  def class_names(self):
    """{"index": int64 [C], "id": string [C], "display_name": string [C]} from the asset."""
    return reusable.read_class_names_csv(self.class_names_file)

  @tf.function(input_signature=[])
  def class_map_path(self):
    """Path of the class CSV (index,id,display_name), as YAMNet's class_map_path()."""
    return self.class_names_file.asset_path

  @tf.function(input_signature=[])
  def classifier_metadata(self):
    return {**self.metadata(),
            "window_samples": tf.constant(self._window_samples, tf.int64),
            "hop_samples": tf.constant(self._hop_samples, tf.int64),
            "num_classes": tf.constant(self._num_classes, tf.int64),
            "multi_label": tf.constant(self._multi_label)}

  def frame_outputs(self, waveform):
    """waveform [samples] (>= one window) -> {key: [frames, ...]} for FRAME_KEYS.

    Runs frames_per_chunk windows through the model at a time, one chunk after
    the other, so memory does not grow with the length.
    """
    window, hop, per_chunk = self._window_samples, self._hop_samples, self._frames_per_chunk
    num_samples = tf.shape(waveform)[0]
    num_frames = 1 + (num_samples - window + hop - 1) // hop
    waveform = tf.pad(waveform, [[0, window + (num_frames - 1) * hop - num_samples]])
    num_chunks = (num_frames + per_chunk - 1) // per_chunk

    def chunk(i, arrays):
      first = i * per_chunk
      count = tf.minimum(per_chunk, num_frames - first)
      segment = waveform[first * hop:first * hop + (count - 1) * hop + window]
      outputs = self._forward(tf.signal.frame(segment, window, hop), False)
      return i + 1, [a.write(i, outputs[k]) for a, k in zip(arrays, FRAME_KEYS)]

    arrays = [tf.TensorArray(tf.float32, size=num_chunks, infer_shape=False)
              for _ in FRAME_KEYS]
    _, arrays = tf.while_loop(lambda i, _: i < num_chunks, chunk, [0, arrays],
                              parallel_iterations=1)
    return {k: a.concat() for k, a in zip(FRAME_KEYS, arrays)}

  def signatures(self) -> dict:
    clip = reusable.single_clip(lambda w: self._forward(w, False), self.checked)
    batch_fn = tf.function(lambda waveform: self._forward(self.checked(waveform), False),
                           input_signature=[
                               tf.TensorSpec([None, None], tf.float32, name="waveform")])
    clip_fn = tf.function(clip, input_signature=[
        tf.TensorSpec([None], tf.float32, name="waveform")])
    # No upper length limit here: that is what frame_scores is for.
    frames_fn = tf.function(
        lambda waveform: self.frame_outputs(reusable.checked_waveform(
            waveform, self._window_samples, self._frames_what, rank=1)),
        input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
    return {"serving_default": batch_fn.get_concrete_function(),
            "classify_clip": clip_fn.get_concrete_function(),
            "frame_scores": frames_fn.get_concrete_function(),
            "class_names": self.class_names.get_concrete_function(),
            "metadata": self.classifier_metadata.get_concrete_function()}


def save_classifier_module(model, classes: Optional[Sequence[dict]], path: str,
                           *, min_samples: Optional[int] = None,
                           window_samples: Optional[int] = None) -> None:
  """Writes `model` as a reusable SavedModel at `path`.

  model: a built AudioClassifier; classes: [{"index", "id", "display_name"}]
  as in dataset_info.json (None: "class_<i>" names); window_samples: the
  frame_scores window, the training crop (default: 1 s).
  """
  classes = classes or default_classes(int(model.num_classes))
  if len(classes) != int(model.num_classes):
    raise ValueError(f"{len(classes)} class names for a model with "
                     f"{model.num_classes} outputs.")
  asset_dir = reusable.temporary_directory()
  try:
    csv_path = reusable.write_class_names_csv(classes, asset_dir)
    module = ClassifierModule(model, csv_path, min_samples=min_samples,
                              window_samples=window_samples)
    module.trace()
    tf.saved_model.save(module, path, signatures=module.signatures())
  finally:
    shutil.rmtree(asset_dir, ignore_errors=True)
