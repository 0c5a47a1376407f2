"""What a training workdir says about itself: the only code that reads or writes it.

    WORKDIR/config.json     the run's ConfigDict (num_classes resolved)
    WORKDIR/run_info.json   {"format_version": 1, "classes": [{"index", "id", "display_name"}],
                             "sample_rate", "crop_seconds", "multi_label", "model_fingerprint"}

Both are written by the trainer once the run has proved that its model matches the workdir
(a fresh workdir, or a complete restore of its checkpoint), so eval, fine-tuning and export
need nothing else: not the data folder, not the current directory.

`model_fingerprint` hashes the model's structure (variable paths, shapes, dtypes) and what
shapes its features (the frontend's class, filter count, sample rate, window): a LEAF and a mel
frontend, or 40 and 64 filters, give different fingerprints; the same config always gives the
same one. `checkpoint_structure` reads the variable part from a checkpoint file, so a
checkpoint can be matched against a model before it is restored.

    with lock(workdir, "train.main"):   one writer per workdir (see `lock`)
    lock_holder(workdir)                who holds it, for readers (export)
"""
import collections
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import socket

from absl import logging
import ml_collections
import tensorflow as tf

from train import atomic_json
from train.configs import default
from train.data import dataset_info as dataset_info_lib

CONFIG_NAME = "config.json"
LOCK_NAME = ".lock"
RUN_INFO_NAME = "run_info.json"
RUN_INFO_VERSION = 1
# Under this name the trainer's tf.train.Checkpoint holds the model.
CHECKPOINT_MODEL_KEY = "model"
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class RunError(ValueError):
  """A workdir, config, checkpoint or data set that does not fit the run (binaries print the
  message, no traceback)."""


class CorruptFileError(RunError):
  """config.json or run_info.json is empty or not what train.main writes."""


def _read_json(path: str, what: str):
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path} not found: {what}")
  text = None
  try:
    with tf.io.gfile.GFile(path) as f:
      text = f.read()
    return json.loads(text)
  except (ValueError, UnicodeDecodeError) as e:
    empty = text is not None and not text.strip()
    raise CorruptFileError(_corrupt_message(path, "empty" if empty else str(e))) from None


def _corrupt_message(path: str, what: str) -> str:
  # The checkpoints do not depend on these files: the trainer rewrites them once a checkpoint
  # has proved it matches the config it is given.
  return (f"{path} is corrupt ({what}). The checkpoints beside it are not affected: run "
          "train.main once more on this workdir with the run's own config to rewrite it (it "
          "resumes from the latest checkpoint).")


# ---------------------------------------------------------------- the lock

def _local(workdir: str) -> bool:
  return "://" not in workdir


def describe_holder(holder: dict) -> str:
  return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
          f"{holder.get('program', 'a program')} started {holder.get('started', '?')}")


def _read_holder(f) -> dict:
  f.seek(0)
  try:
    holder = json.loads(f.read() or "{}")
  except ValueError:
    return {}
  return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def lock(workdir: str, program: str):
  """Holds WORKDIR/.lock exclusively while the block runs; RunError naming the holder if another
  process holds it.

  An advisory flock(2) lock: the kernel releases it when its holder dies, SIGKILL included, so
  a lock left by a killed run is taken over (with a warning naming that run) instead of
  blocking the workdir for ever. The file names its holder (pid, host, program, start time)
  for the message others get; it is removed on release. Remote workdirs (gs://...) are not
  locked (no flock there): a warning says so.
  """
  if not _local(workdir):
    logging.warning("%s is not on a local file system: it is not locked against a second "
                    "writer.", workdir)
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_NAME)
  while True:
    f = open(path, "a+", encoding="utf-8")
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read_holder(f)
      f.close()
      if e.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise RunError(f"Workdir {workdir} is in use by {describe_holder(holder)} "
                     f"(lock {path}). Wait for it to end, or use another --workdir.") from None
    # The file we locked may have been removed by a holder releasing it meanwhile: lock
    # the one at the path.
    try:
      same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
      same = False
    if same:
      break
    f.close()
  previous = _read_holder(f)
  if previous:
    logging.warning("Took over the lock of %s: %s, which is gone (killed?).", workdir,
                    describe_holder(previous))
  f.seek(0)
  f.truncate()
  f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "program": program,
                      "started": datetime.datetime.now().astimezone().isoformat(
                          timespec="seconds")}) + "\n")
  f.flush()
  try:
    yield
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)
    f.close()          # releases the lock


def lock_holder(workdir: str):
  """The holder dict of a workdir's lock while a live process holds it, else None (reads
  only: never creates the lock file)."""
  path = os.path.join(workdir, LOCK_NAME)
  if not _local(workdir) or not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
      except OSError:
        return _read_holder(f) or {}
      return None
  except FileNotFoundError:       # released meanwhile
    return None


# ---------------------------------------------------------------- config

def _fill_defaults(defaults: dict, saved: dict) -> dict:
  """saved, with the keys it lacks taken from defaults (recursively for nested dicts)."""
  merged = dict(saved)
  for key, value in defaults.items():
    if key not in merged:
      merged[key] = value
    elif isinstance(value, dict) and isinstance(merged[key], dict):
      merged[key] = _fill_defaults(value, merged[key])
  return merged


def write_config(workdir: str, config) -> None:
  """WORKDIR/config.json, atomically; a local dataset.data_dir is stored absolute, so that
  eval and export find the data from any current directory."""
  config = config.copy_and_resolve_references()
  data_dir = config.dataset.data_dir
  if data_dir and "://" not in data_dir:
    config.dataset.data_dir = os.path.abspath(data_dir)
  tf.io.gfile.makedirs(workdir)
  atomic_json.write(os.path.join(workdir, CONFIG_NAME), json.loads(config.to_json()))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The ConfigDict a run wrote to WORKDIR/config.json.

  Keys that the file lacks (it predates them) take the current defaults of
  train/configs/default.py, so an older workdir still rebuilds; its model.multi_label
  (true / false) becomes model.type (multilabel / multiclass).
  """
  saved = _read_json(os.path.join(workdir, CONFIG_NAME),
                     f"{workdir!r} is not a training workdir")
  if not isinstance(saved, dict):
    raise CorruptFileError(_corrupt_message(os.path.join(workdir, CONFIG_NAME),
                                            "not a JSON object"))
  model = saved.get("model")
  if isinstance(model, dict) and "multi_label" in model:     # written before model.type
    legacy = model.pop("multi_label")
    model.setdefault("type", "multilabel" if legacy else "multiclass")
  defaults = default.get_config().to_dict()
  # frontend arguments the file lacks take the frontend's own defaults (in its constructor);
  # the default config's frontend block is another frontend's
  defaults["frontend"] = {}
  return ml_collections.ConfigDict(_fill_defaults(defaults, saved))


# ---------------------------------------------------------------- run info

def write_run_info(workdir: str, *, classes, sample_rate: int, crop_seconds: float,
                   multi_label: bool, model_fingerprint: str) -> None:
  """WORKDIR/run_info.json, atomically (see the module doc)."""
  info = {
      "format_version": RUN_INFO_VERSION,
      "classes": [{"index": int(c["index"]), "id": str(c["id"]),
                   "display_name": str(c["display_name"])} for c in classes],
      "sample_rate": int(sample_rate),
      "crop_seconds": float(crop_seconds),
      "multi_label": bool(multi_label),
      "model_fingerprint": str(model_fingerprint),
  }
  tf.io.gfile.makedirs(workdir)
  atomic_json.write(os.path.join(workdir, RUN_INFO_NAME), info)


def read_run_info(workdir: str) -> dict:
  """The dict write_run_info wrote; a clear error naming the file if it is missing or corrupt."""
  path = os.path.join(workdir, RUN_INFO_NAME)
  info = _read_json(path, f"{workdir!r} has no run description (written by train.main since "
                          "the workdir format has one; run train.main once more on this "
                          "workdir with its own config to write it)")
  required = ("format_version", "classes", "sample_rate", "crop_seconds", "multi_label",
              "model_fingerprint")
  missing = [k for k in required if not isinstance(info, dict) or k not in info]
  if missing:
    raise CorruptFileError(_corrupt_message(path, f"missing {', '.join(missing)}"))
  if info["format_version"] != RUN_INFO_VERSION:
    raise RunError(f"{path} has format_version {info['format_version']}; this code reads "
                     f"version {RUN_INFO_VERSION}")
  return info


def has_run_info(workdir: str) -> bool:
  return tf.io.gfile.exists(os.path.join(workdir, RUN_INFO_NAME))


# ---------------------------------------------------------------- fingerprints

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


# ---------------------------------------------------------------- matching a run to the workdir

def _flatten(value, prefix=""):
  if isinstance(value, dict):
    out = {}
    for key, item in value.items():
      out.update(_flatten(item, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: value}


def config_difference(workdir: str, config, sections=("frontend", "model")) -> str:
  """The keys of `sections` in which config differs from WORKDIR/config.json, one per line."""
  try:
    saved = _flatten({s: load_config(workdir)[s].to_dict() for s in sections})
  except (FileNotFoundError, ValueError) as e:
    return f"  (cannot read the workdir's config: {e})"
  given = _flatten({s: config[s].to_dict() for s in sections})
  lines = [f"  {key}: {saved.get(key, '<unset>')!r} in {os.path.join(workdir, CONFIG_NAME)}, "
           f"{given.get(key, '<unset>')!r} in the given config"
           for key in sorted(set(saved) | set(given)) if saved.get(key) != given.get(key)]
  return "\n".join(lines) or "  (no difference in frontend/model keys)"


def check_data_matches(run_info: dict, dataset_info: dict, data_dir: str, workdir: str) -> None:
  """Raises ValueError unless the data has the classes and sample rate the run trained on."""
  path = dataset_info_lib.path(data_dir)
  trained_ids = [c["id"] for c in run_info["classes"]]
  data_ids = [c["id"] for c in sorted(dataset_info["classes"], key=lambda c: c["index"])]
  if trained_ids != data_ids:
    differ = next((i for i, (a, b) in enumerate(zip(trained_ids, data_ids)) if a != b),
                  min(len(trained_ids), len(data_ids)))
    raise RunError(
        f"The data does not match workdir {workdir}: {os.path.join(workdir, RUN_INFO_NAME)} "
        f"has {len(trained_ids)} classes, {path} has {len(data_ids)}; they differ from index "
        f"{differ} on. Use the data the run trained on, or a new --workdir.")
  if int(dataset_info["sample_rate"]) != int(run_info["sample_rate"]):
    raise RunError(
        f"The data does not match workdir {workdir}: the run trained at "
        f"{run_info['sample_rate']} Hz ({os.path.join(workdir, RUN_INFO_NAME)}), {path} is at "
        f"{dataset_info['sample_rate']} Hz.")
