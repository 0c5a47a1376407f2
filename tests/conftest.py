"""Test-wide setup: tf.keras must resolve to tf_keras before TensorFlow loads."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import legacy_keras  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS)
