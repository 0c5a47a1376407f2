"""tf_frontends: learnable audio frontends (LEAF, SincNet, ...) as tf_keras layers.

    import tf_frontends
    features = tf_frontends.Leaf()(waveform)   # [B, T] -> [B, ceil(T / 160), 40]
    frontend = tf_frontends.get("sincnet", n_filters=64)

    # A variant is a composition of building blocks, e.g. LEAF with log compression:
    leaf_log = tf_frontends.Frontend(
        tf_frontends.GaborConv1D(40, 401), tf_frontends.SquaredModulus(),
        tf_frontends.GaussianLowpass(401, strides=160), tf_frontends.LogCompression())
    # ... and as a run config's frontend (plain data: the training config needs no TF):
    serialized = tf_keras.layers.serialize(leaf_log)
    frontend = tf_frontends.get(tf_frontends.COMPOSITION, config=serialized)

Every frontend implements `FrontendInterface` (sample_rate, window_size, hop,
n_filters, output_bins, min_samples, filter_taps, frequency_responses).

Importing the package changes no environment variable and no global state: the
layers are tf_keras layers whatever `tf.keras` resolves to. (The tf-models and
TF-Hub parts of this project need TF_USE_LEGACY_KERAS=1 set before TensorFlow is
imported; their entry points set it, the library does not.)
"""
from tf_frontends.composition import Frontend
from tf_frontends.composition import FrontendInterface
from tf_frontends.composition import SquaredModulus
from tf_frontends.compression import LogCompression
from tf_frontends.compression import PCEN
from tf_frontends.convolution import FreeConv1D
from tf_frontends.convolution import GaborConv1D
from tf_frontends.convolution import SincConv1D
from tf_frontends.frontends import COMPOSITION
from tf_frontends.frontends import FRONTENDS
from tf_frontends.frontends import Leaf
from tf_frontends.frontends import SincNet
from tf_frontends.frontends import SincNetPlus
from tf_frontends.frontends import TimeDomainFilterbanks
from tf_frontends.frontends import get
from tf_frontends.mel import MelFilterbanks
from tf_frontends.efficient_leaf import EfficientLeaf
from tf_frontends.pooling import GaussianLowpass
from tf_frontends.pooling import LearnablePooling1D

__all__ = [
    # named frontends and the registry
    "FRONTENDS", "EfficientLeaf", "Leaf", "MelFilterbanks", "SincNet", "SincNetPlus",
    "TimeDomainFilterbanks", "get",
    # what every frontend tells its users; a serialized frontend's name for `get`
    "FrontendInterface", "COMPOSITION",
    # the composition and its building blocks
    "Frontend", "FreeConv1D", "GaborConv1D", "SincConv1D", "SquaredModulus",
    "GaussianLowpass", "LearnablePooling1D", "LogCompression", "PCEN",
]
