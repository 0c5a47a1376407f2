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
  class_names:     () -> {"index" int64 [C], "id" string [C], "display_name" string [C]}
  metadata:        () -> {"sample_rate", "min_samples", "num_classes", "multi_label"}
The class names live in assets/class_names.csv (index,id,display_name), so they
travel with the directory when it is copied.
"""
import shutil
from typing import Optional, Sequence

import tensorflow as tf

from hub_modules import frontend_module
from hub_modules import reusable

OUTPUT_KEYS = ("scores", "logits", "embedding", "features")


def default_classes(num_classes: int) -> list:
  return [{"index": i, "id": f"class_{i}", "display_name": f"class {i}"}
          for i in range(num_classes)]


def classifier_outputs(model, waveform, training=False) -> dict:
  """The module's output dict from an AudioClassifier (train.models contract)."""
  outputs = model.compute_outputs(waveform, training=training)
  logits = outputs["logits"]
  scores = tf.sigmoid(logits) if model.multi_label else tf.nn.softmax(logits)
  return {"scores": scores, "logits": logits,
          "embedding": outputs["embedding"], "features": outputs["features"]}


class ClassifierModule(reusable.ReusableModule):
  """Wraps an AudioClassifier: waveform [batch, samples] -> scores, logits, embedding, features."""

  def __init__(self, model, class_names_csv: str, *,
               min_samples: Optional[int] = None, name: Optional[str] = None):
    """model: a built AudioClassifier; class_names_csv: path of the asset CSV."""
    frontend = model.frontend
    super().__init__(
        model,
        min_samples=min_samples or frontend_module.frontend_min_samples(frontend),
        sample_rate=getattr(frontend, "sample_rate", 16000), name=name)
    object.__setattr__(self, "model", model)  # untracked: see ReusableModule
    self._num_classes = int(model.num_classes)
    self._multi_label = bool(model.multi_label)
    self._n_filters = int(frontend.n_filters)
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
            "features": tf.zeros([0, 0, self._n_filters])}

  @tf.function(input_signature=[])
  def class_names(self):
    """{"index": int64 [C], "id": string [C], "display_name": string [C]} from the asset."""
    return reusable.read_class_names_csv(self.class_names_file)

  @tf.function(input_signature=[])
  def classifier_metadata(self):
    return {**self.metadata(),
            "num_classes": tf.constant(self._num_classes, tf.int64),
            "multi_label": tf.constant(self._multi_label)}

  def signatures(self) -> dict:
    def batch(waveform):
      waveform = reusable.checked_waveform(waveform, self._min_samples, self._what)
      return self._forward(waveform, False)
    clip = reusable.single_clip(lambda w: self._forward(w, False),
                                self._min_samples, self._what)
    batch_fn = tf.function(batch, input_signature=[
        tf.TensorSpec([None, None], tf.float32, name="waveform")])
    clip_fn = tf.function(clip, input_signature=[
        tf.TensorSpec([None], tf.float32, name="waveform")])
    return {"serving_default": batch_fn.get_concrete_function(),
            "classify_clip": clip_fn.get_concrete_function(),
            "class_names": self.class_names.get_concrete_function(),
            "metadata": self.classifier_metadata.get_concrete_function()}


def save_classifier_module(model, classes: Optional[Sequence[dict]], path: str,
                           *, min_samples: Optional[int] = None) -> None:
  """Writes `model` as a reusable SavedModel at `path`.

  model: a built AudioClassifier; classes: [{"index", "id", "display_name"}]
  as in dataset_info.json (None: "class_<i>" names).
  """
  classes = classes or default_classes(int(model.num_classes))
  if len(classes) != int(model.num_classes):
    raise ValueError(f"{len(classes)} class names for a model with "
                     f"{model.num_classes} outputs.")
  asset_dir = reusable.temporary_directory()
  try:
    csv_path = reusable.write_class_names_csv(classes, asset_dir)
    module = ClassifierModule(model, csv_path, min_samples=min_samples)
    module.trace()
    tf.saved_model.save(module, path, signatures=module.signatures())
  finally:
    shutil.rmtree(asset_dir, ignore_errors=True)
