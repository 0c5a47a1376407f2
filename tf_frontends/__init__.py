"""tf_frontends: learnable audio frontends (LEAF, SincNet, ...) as tf_keras layers.

    import tf_frontends
    features = tf_frontends.Leaf()(waveform)   # [B, T] -> [B, ceil(T / 160), 40]
    frontend = tf_frontends.get("sincnet", n_filters=64)
"""
from tf_frontends import legacy_keras  # first: routes tf.keras to tf_keras

from tf_frontends.frontends import FRONTENDS
from tf_frontends.frontends import Leaf
from tf_frontends.frontends import MelFilterbanks
from tf_frontends.frontends import SincNet
from tf_frontends.frontends import SincNetPlus
from tf_frontends.frontends import TimeDomainFilterbanks
from tf_frontends.frontends import get
from tf_frontends.efficient_leaf import EfficientLeaf  # after frontends: they import each other

__all__ = ["EfficientLeaf", "FRONTENDS", "Leaf", "MelFilterbanks", "SincNet", "SincNetPlus",
           "TimeDomainFilterbanks", "get"]
