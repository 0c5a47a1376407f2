"""tf_frontends.keras3: the frontends as native Keras 3 layers (TensorFlow, JAX, PyTorch).

    import os; os.environ["KERAS_BACKEND"] = "jax"     # before keras is imported
    import keras
    from tf_frontends import keras3 as frontends
    model = keras.Sequential([keras.Input((16000,)), frontends.Leaf(), ...])

The layers take the same arguments, have the same defaults and compute the same numbers as
the tf_keras layers of `tf_frontends` (`import tf_frontends` alone never imports Keras 3):
the formulas are shared (`impulse_responses`, `compression`, ...), evaluated with
`keras.ops` on JAX and PyTorch and with TensorFlow's ops, and its fast gradients, on the
TensorFlow backend. `from_tf_keras(layer)` makes the Keras 3 twin of a tf_keras frontend and
`transfer_weights(source, target)` copies weights between the two kinds, either way.
"""
from tf_frontends.keras3.blocks import FreeConv1D
from tf_frontends.keras3.blocks import GaborConv1D
from tf_frontends.keras3.blocks import GaussianLowpass
from tf_frontends.keras3.blocks import LearnablePooling1D
from tf_frontends.keras3.blocks import LogCompression
from tf_frontends.keras3.blocks import LogTBN
from tf_frontends.keras3.blocks import PCEN
from tf_frontends.keras3.blocks import SincConv1D
from tf_frontends.keras3.blocks import SquaredModulus
from tf_frontends.keras3.frontends import EfficientLeaf
from tf_frontends.keras3.frontends import Frontend
from tf_frontends.keras3.frontends import Leaf
from tf_frontends.keras3.frontends import MelFilterbanks
from tf_frontends.keras3.frontends import SincNet
from tf_frontends.keras3.frontends import SincNetPlus
from tf_frontends.keras3.frontends import TimeDomainFilterbanks
from tf_frontends.keras3.weights import from_tf_keras
from tf_frontends.keras3.weights import transfer_weights

FRONTENDS = {"leaf": Leaf, "sincnet": SincNet, "sincnet_plus": SincNetPlus,
             "tdfbanks": TimeDomainFilterbanks, "mel": MelFilterbanks,
             "efficientleaf": EfficientLeaf}


def get(name: str, **kwargs):
  """A Keras 3 frontend by name (`tf_frontends.get`'s names), with its constructor kwargs."""
  if name not in FRONTENDS:
    raise ValueError(f"Unknown frontend {name!r}; choose one of {sorted(FRONTENDS)}.")
  return FRONTENDS[name](**kwargs)


__all__ = [
    "FRONTENDS", "EfficientLeaf", "Leaf", "MelFilterbanks", "SincNet", "SincNetPlus",
    "TimeDomainFilterbanks", "get", "Frontend", "FreeConv1D", "GaborConv1D", "SincConv1D",
    "SquaredModulus", "GaussianLowpass", "LearnablePooling1D", "LogCompression", "PCEN",
    "LogTBN", "from_tf_keras", "transfer_weights",
]
