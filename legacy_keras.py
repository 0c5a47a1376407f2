"""For entry points only: routes `tf.keras` to tf_keras (Keras 2) before anything resolves it.

tf-models-official's EfficientNet and tensorflow_hub's KerasLayer only work with
Keras 2 on TF 2.20, and TensorFlow decides which Keras `tf.keras` means the first
time `tf.keras` is touched, from the environment variable TF_USE_LEGACY_KERAS.
Importing this module first sets it: the binaries (train, export, data prep),
the benchmarks and the tests do so. The library `tf_frontends` does not (it uses
tf_keras directly and changes no environment), which is why this module lives
outside it. If the caller already resolved `tf.keras` to Keras 3 there is no way
back within the process, so we fail loudly instead of breaking later inside
tf-models.
"""
import os
import sys

_TRUTHY = ("1", "true", "True")


def ensure_legacy_keras() -> None:
  """Makes `tf.keras` resolve to tf_keras, or raises ImportError if too late."""
  if os.environ.get("TF_USE_LEGACY_KERAS") not in _TRUTHY:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
  tf_module = sys.modules.get("tensorflow")
  if tf_module is None:
    return
  keras_module = tf_module.__dict__.get("keras")
  if keras_module is None:
    return
  # Unresolved: a lazy loader that will read the variable we just set. Resolved:
  # the loader has replaced itself by the Keras module it chose.
  resolved = keras_module.__dict__.get("_tfll_keras_version")
  if resolved is None and not keras_module.__dict__.get("_tfll_initialized", True):
    return
  resolved = resolved or keras_module.__name__
  if not resolved.startswith("tf_keras"):
    raise ImportError(
        "tf-models-official and TF-Hub need tf.keras to be tf_keras (Keras 2), but TensorFlow "
        f"was already imported and tf.keras resolved to {resolved!r} (Keras 3). "
        "Set TF_USE_LEGACY_KERAS=1 in the environment, or import legacy_keras "
        "before touching tf.keras.")

ensure_legacy_keras()
