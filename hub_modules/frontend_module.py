"""The frontend alone as a reusable, fine-tunable TF-Hub module.

    module = FrontendModule(tf_frontends.Leaf())
    save_frontend_module(module, "/tmp/leaf_frontend")

    layer = hub.KerasLayer("/tmp/leaf_frontend", trainable=True)
    features = layer(waveform)        # [batch, samples] -> [batch, frames, n_filters]

Signatures (for serving / TF-Serving / `tf.saved_model.load(...).signatures`):
  serving_default: waveform float32 [batch, samples] -> {"features": [batch, frames, n_filters]}
  features_clip:   waveform float32 [samples]        -> {"features": [frames, n_filters]}
  metadata:        ()                                -> {"sample_rate", "min_samples"}
`__call__(inputs, training=False)` returns the features tensor; gradients reach
the frontend's variables (Gabor centre frequencies and bandwidths, pooling
widths, PCEN parameters for LEAF).
"""
import tensorflow as tf

from hub_modules import reusable



class FrontendModule(reusable.ReusableModule):
  """waveform [batch, samples] float32 -> features [batch, frames, n_filters]."""

  def __init__(self, frontend, *, min_samples: int = None, name: str = None):
    """frontend: a built or unbuilt tf_frontends frontend (`FrontendInterface`);
    min_samples: shortest accepted input (default: the frontend's, one window)."""
    if not frontend.built:
      frontend(tf.zeros([1, frontend.min_samples]))
    super().__init__(
        frontend, min_samples=min_samples or frontend.min_samples,
        sample_rate=frontend.sample_rate, name=name)
    object.__setattr__(self, "frontend", frontend)  # untracked: see ReusableModule
    self._output_bins = int(frontend.output_bins)

  def _forward(self, waveform, training):
    return self.frontend(waveform, training=training)

  def _error_outputs(self):
    return tf.zeros([0, 0, self._output_bins])

  def signatures(self) -> dict:
    batch = tf.function(
        lambda waveform: {"features": self._forward(self.checked(waveform), False)},
        input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
    clip = tf.function(
        reusable.single_clip(lambda w: {"features": self._forward(w, False)}, self.checked),
        input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
    return {"serving_default": batch.get_concrete_function(),
            "features_clip": clip.get_concrete_function(),
            "metadata": self.metadata.get_concrete_function()}


def save_frontend_module(module: FrontendModule, path: str) -> None:
  """Writes `module` as a reusable SavedModel at `path` (which must not exist)."""
  module.trace()
  tf.saved_model.save(module, path, signatures=module.signatures())
