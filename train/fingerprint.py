"""What a model is, as a workdir records it: its variables' paths, shapes and dtypes, and a hash.

`model_fingerprint` hashes the model's structure (variable paths, shapes, dtypes) and what
shapes its features (the frontend's class, filter count, sample rate, window): a LEAF and a mel
frontend, or 40 and 64 filters, give different fingerprints; the same config always gives the
same one. `checkpoint_structure` reads the variable part from a checkpoint file, so a
checkpoint can be matched against a model before it is restored.
"""
import collections
import hashlib
import json

import tensorflow as tf

# Under this name the trainer's tf.train.Checkpoint holds the model.
CHECKPOINT_MODEL_KEY = "model"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _escape(name: str) -> str:
  # as tf.train.Checkpoint escapes object names in its keys
  return name.replace(".", "..").replace("/", ".S")


def variable_paths(model) -> dict:
  """{path: variable} of every variable the model tracks, paths as in a checkpoint of it.

  Breadth first over tracked children, each object under the first path that reaches it:
  the traversal tf.train.Checkpoint does, so "model/" + path + "/.ATTRIBUTES/VARIABLE_VALUE"
  is the variable's key in the trainer's checkpoints.
  """
  view = tf.train.TrackableView(model)
  seen, paths = {id(model)}, {}
  queue = collections.deque([(model, "")])
  while queue:
    obj, prefix = queue.popleft()
    for name, child in view.children(obj).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      path = f"{prefix}/{_escape(name)}" if prefix else _escape(name)
      if isinstance(child, tf.Variable):
        paths[path] = child
      else:
        queue.append((child, path))
  return paths


# Frontend hyperparameters that decide what the features are (mel filterbanks have no
# variables, so 40 and 64 of them differ only here). Other keyword arguments stay out, so
# that a frontend argument added later does not change the fingerprint of older runs.
_FEATURE_KEYS = ("n_filters", "sample_rate", "window_len", "window_stride")


def model_structure(model) -> dict:
  """{path: (shape, dtype name)} of a built model's variables."""
  return {path: (tuple(v.shape.as_list()), v.dtype.name)
          for path, v in variable_paths(model).items()}


def checkpoint_structure(path: str) -> dict:
  """{path: (shape, dtype name)} of the model variables in a trainer checkpoint."""
  reader = tf.train.load_checkpoint(path)
  shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
  prefix = CHECKPOINT_MODEL_KEY + "/"
  return {key[len(prefix):-len(_VALUE_SUFFIX)]: (tuple(shapes[key]), dtypes[key].name)
          for key in shapes if key.startswith(prefix) and key.endswith(_VALUE_SUFFIX)}


def model_fingerprint(model) -> str:
  """A hash of the model's structure: sorted variable paths, shapes and dtypes, and the
  frontend's class and feature-defining hyperparameters (if the model has a `frontend`)."""
  lines = [f"{path} {list(shape)} {dtype}"
           for path, (shape, dtype) in sorted(model_structure(model).items())]
  frontend = getattr(model, "frontend", None)
  if frontend is not None:
    config = frontend.get_config()
    lines.append(f"frontend {type(frontend).__name__} " + json.dumps(
        {k: config[k] for k in _FEATURE_KEYS if k in config}, sort_keys=True))
  return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def describe_difference(expected: dict, found: dict, limit: int = 4) -> str:
  """A short account of how two structures ({path: (shape, dtype)}) differ."""
  parts = []
  only_expected = sorted(set(expected) - set(found))
  only_found = sorted(set(found) - set(expected))
  changed = sorted(p for p in set(expected) & set(found) if expected[p] != found[p])
  for label, paths in (("missing", only_expected), ("unexpected", only_found)):
    if paths:
      parts.append(f"{len(paths)} {label} (e.g. {', '.join(paths[:limit])})")
  if changed:
    parts.append(f"{len(changed)} of other shape/dtype (e.g. " + ", ".join(
        f"{p} {list(found[p][0])} vs {list(expected[p][0])}" for p in changed[:limit]) + ")")
  return "; ".join(parts) or "same variables"
