"""Moving a frontend between tf_keras and Keras 3: `from_tf_keras` and `transfer_weights`."""
import keras
import numpy as np

from tf_frontends import composition
from tf_frontends.keras3 import blocks
from tf_frontends.keras3 import frontends


def from_tf_keras(frontend):
  """A new (unbuilt) Keras 3 frontend with the arguments of a tf_keras one (named or composed).

  Its weights are the initial ones; `transfer_weights(frontend, twin)` copies the trained ones.
  """
  common = {"name": frontend.name, "trainable": frontend.trainable}
  twin = frontends.FRONTEND_TWINS.get(type(frontend))
  if twin is not None:
    return twin(**blocks.own_arguments(frontend), **common)
  if isinstance(frontend, composition.Frontend):
    return frontends.Frontend(
        **{key: frontends.convert_block(getattr(frontend, key)) for key in frontends.BLOCKS},
        energy_floor=frontend.energy_floor, sample_rate=frontend.sample_rate, **common)
  raise TypeError(f"from_tf_keras: {type(frontend).__name__} is not a tf_frontends frontend.")


def _relative_path(frontend, variable) -> str:
  """A weight's path below the frontend: 'gabor_conv/kernel' (tf_keras names end in ':0')."""
  path = getattr(variable, "path", None) if isinstance(variable, keras.Variable) else None
  parts = (path or variable.name.split(":")[0]).split("/")
  # tf_keras names a weight below its frontend's name when the frontend was built by a call,
  # without it when built by build(); Keras 3 always (below its model's name, if any).
  start = parts.index(frontend.name) + 1 if frontend.name in parts else 0
  return "/".join(parts[start:])


def _weights_by_path(frontend, role):
  if not frontend.built:
    raise ValueError(f"transfer_weights: the {role} {type(frontend).__name__} "
                     f"{frontend.name!r} is not built; call it on a batch (or build it) first.")
  return {_relative_path(frontend, w): w for w in frontend.weights}


def transfer_weights(source, target) -> None:
  """Copies every weight of `source` into `target`: a tf_keras frontend and its Keras 3 twin,
  either way round (or two of the same kind), matched by their paths below the frontend.

  Raises ValueError naming the weights that one side has and the other has not, or whose
  shapes differ.
  """
  source_weights = _weights_by_path(source, "source")
  target_weights = _weights_by_path(target, "target")
  if set(source_weights) != set(target_weights):
    raise ValueError(
        "transfer_weights: the frontends' weights differ: only in the source "
        f"{sorted(set(source_weights) - set(target_weights))}, only in the target "
        f"{sorted(set(target_weights) - set(source_weights))}.")
  for path, weight in target_weights.items():
    value = np.asarray(keras.ops.convert_to_numpy(source_weights[path])
                       if isinstance(source_weights[path], keras.Variable)
                       else source_weights[path].numpy())
    if tuple(value.shape) != tuple(weight.shape):
      raise ValueError(f"transfer_weights: {path} has shape {value.shape} in the source, "
                       f"{tuple(weight.shape)} in the target.")
    weight.assign(value)

