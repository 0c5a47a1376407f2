"""A training run's folder: `Workdir` owns every path in it and every read and write of it.

    WORKDIR/config.json         the run's ConfigDict (num_classes resolved)
    WORKDIR/run_info.json       {"format_version": 1, "classes": [{"index", "id", "display_name"}],
                                 "sample_rate", "crop_seconds", "multi_label", "model_fingerprint"}
    WORKDIR/checkpoints/        tf.train.CheckpointManager of Checkpoint(model, optimizer, step)
    WORKDIR/best/               the same at the best evaluation, + best.json {"step", metric}
    WORKDIR/eval_results.json   the latest evaluation, strict JSON
    WORKDIR/train/, eval/       TensorBoard logs
    WORKDIR/.lock               while a trainer runs: who it is (see `lock`)
    WORKDIR/tmp_workers/T_N/    a non-chief worker's throw-away checkpoints (removed at its end)
    WORKDIR/imported_from.json  what export.import_audax imported (its workdirs only)

config.json and run_info.json are written by the trainer once the run has proved that its
model matches the workdir (a fresh workdir, or a complete restore of its checkpoint), so eval,
fine-tuning and export need nothing else: not the data folder, not the current directory.

    workdir = Workdir(path)                      the chief's view
    workdir.for_worker("worker_1")               a non-chief worker's: its checkpoints and lock
                                                 go to a throw-away folder, it writes no files
    with workdir.lock("train.main"):             one writer per workdir
    workdir.lock_holder()                        who holds it, for readers (export)
"""
import contextlib
import json
import math
import os
import shutil

from absl import logging
import ml_collections
import tensorflow as tf

from train import atomic_json
from train.configs import default
from train import folder_lock
from train.data import dataset_info as dataset_info_lib
from train.errors import CorruptFileError, RunError  # noqa: F401  (raised for callers here)
RUN_INFO_VERSION = 1
_CONFIG = "config.json"
_RUN_INFO = "run_info.json"
_CHECKPOINTS = "checkpoints"
_BEST = "best"
_BEST_JSON = "best.json"
_EVAL_RESULTS = "eval_results.json"
_WORKER_TMP = "tmp_workers"
_IMPORTED_FROM = "imported_from.json"      # export.import_audax's workdirs
_LOGS = {"train": "train", "eval": "eval"}
# The checkpoint prefix tf.train.CheckpointManager gives its files (ckpt-N.index, ...).
CHECKPOINT_PREFIX = "ckpt"


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


def _fill_defaults(defaults: dict, saved: dict) -> dict:
  """saved, with the keys it lacks taken from defaults (recursively for nested dicts)."""
  merged = dict(saved)
  for key, value in defaults.items():
    if key not in merged:
      merged[key] = value
    elif isinstance(value, dict) and isinstance(merged[key], dict):
      merged[key] = _fill_defaults(value, merged[key])
  return merged


def _flatten(value, prefix=""):
  if isinstance(value, dict):
    out = {}
    for key, item in value.items():
      out.update(_flatten(item, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: value}


class Workdir:
  """The folder of one training run (see the module doc).

  `worker`: "" for the chief (the worker that writes the run's files); a non-chief worker's
  name ("worker_1") gives the view of that worker: it saves its (collective) checkpoints in a
  throw-away folder of its own, locks that folder, and writes no file of the run.
  """

  def __init__(self, path: str, worker: str = ""):
    self.path = path
    self.worker = worker

  @classmethod
  def of(cls, workdir) -> "Workdir":
    """A Workdir as given, or the chief's view of a path."""
    return workdir if isinstance(workdir, Workdir) else cls(workdir)

  def for_worker(self, worker: str) -> "Workdir":
    return Workdir(self.path, worker)

  def __str__(self) -> str:
    return self.path

  def __repr__(self) -> str:
    return f"Workdir({self.path!r}" + (f", worker={self.worker!r})" if self.worker else ")")

  @property
  def is_chief(self) -> bool:
    return not self.worker

  # ------------------------------------------------------------------ paths

  def _file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def _own(self, name: str) -> str:
    """WORKDIR/name on the chief, inside the worker's throw-away folder elsewhere."""
    return self._file(name) if self.is_chief else os.path.join(self._scratch, name)

  @property
  def _scratch(self) -> str:
    return os.path.join(self.path, _WORKER_TMP, self.worker)

  @property
  def config_path(self) -> str:
    return self._file(_CONFIG)

  @property
  def run_info_path(self) -> str:
    return self._file(_RUN_INFO)

  @property
  def eval_results_path(self) -> str:
    return self._file(_EVAL_RESULTS)

  @property
  def checkpoints_dir(self) -> str:
    """The run's checkpoints/ (what every worker resumes from, and readers read)."""
    return self._file(_CHECKPOINTS)

  @property
  def best_dir(self) -> str:
    return self._file(_BEST)

  def saving_dirs(self):
    """(checkpoints, best) folders this worker saves to: the run's on the chief, throw-away
    ones elsewhere (under MultiWorkerMirrored every worker must save: saving is collective)."""
    return self._own(_CHECKPOINTS), self._own(_BEST)

  def checkpoint_path(self, step) -> str:
    """The prefix of checkpoints/' checkpoint at `step` (a number, or "N" for messages)."""
    return os.path.join(self.checkpoints_dir, f"{CHECKPOINT_PREFIX}-{step}")

  def relative(self, path: str) -> str:
    """path as named from the workdir (checkpoints/ckpt-12)."""
    return os.path.relpath(path, self.path)

  @classmethod
  def owning(cls, checkpoint: str):
    """The workdir whose checkpoints/ or best/ holds the checkpoint prefix, else None."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    if os.path.basename(folder) not in (_CHECKPOINTS, _BEST):
      return None
    return cls(os.path.dirname(folder))

  @staticmethod
  def looks_like_workdir(path: str) -> bool:
    """train.main's run_info.json, or a config.json beside checkpoints/ or best/."""
    if os.path.isfile(os.path.join(path, _RUN_INFO)):
      return True
    return os.path.isfile(os.path.join(path, _CONFIG)) and any(
        os.path.isdir(os.path.join(path, name)) for name in (_CHECKPOINTS, _BEST))

  def check_is_folder(self) -> None:
    if tf.io.gfile.exists(self.path) and not tf.io.gfile.isdir(self.path):
      raise RunError(f"--workdir {self.path} is a file, not a folder: pass a new folder or a "
                     "training workdir.")

  # ------------------------------------------------------------------ the lock

  @contextlib.contextmanager
  def lock(self, program: str):
    """Holds the workdir's lock (a worker: its own folder's) while the block runs; RunError
    naming the holder if another process holds it. A worker's folder is removed when the
    block ends normally (with tmp_workers/ once empty)."""
    folder = self.path if self.is_chief else self._scratch
    worker_tmp = self._file(_WORKER_TMP)
    with folder_lock.lock(folder, program):
      yield
    if self.worker:
      shutil.rmtree(folder, ignore_errors=True)
      with contextlib.suppress(OSError):
        os.rmdir(worker_tmp)

  def lock_holder(self):
    """Who holds the workdir's lock ("pid 12 on host h, train.main started ..."), else None."""
    holder = folder_lock.lock_holder(self.path)
    return None if holder is None else folder_lock.describe_holder(holder)

  # ------------------------------------------------------------------ config

  def describe(self, config, *, classes, sample_rate: int, crop_seconds: float,
               multi_label: bool, model_fingerprint: str) -> None:
    """Writes config.json and run_info.json (each atomically): what the trainer does once the
    run has proved it matches the workdir. A local dataset.data_dir is stored absolute, so
    that eval and export find the data from any current directory."""
    config = config.copy_and_resolve_references()
    data_dir = config.dataset.data_dir
    if data_dir and "://" not in data_dir:
      config.dataset.data_dir = os.path.abspath(data_dir)
    info = {
        "format_version": RUN_INFO_VERSION,
        "classes": [{"index": int(c["index"]), "id": str(c["id"]),
                     "display_name": str(c["display_name"])} for c in classes],
        "sample_rate": int(sample_rate),
        "crop_seconds": float(crop_seconds),
        "multi_label": bool(multi_label),
        "model_fingerprint": str(model_fingerprint),
    }
    config_path, run_info_path = self.config_path, self.run_info_path
    tf.io.gfile.makedirs(self.path)
    atomic_json.write(config_path, json.loads(config.to_json()))
    atomic_json.write(run_info_path, info)

  def load_config(self) -> ml_collections.ConfigDict:
    """The ConfigDict the run wrote to config.json.

    Keys that the file lacks (it predates them) take the current defaults of
    train/configs/default.py, so an older workdir still rebuilds; its model.multi_label
    (true / false) becomes model.type (multilabel / multiclass).
    """
    saved = _read_json(self.config_path, f"{self.path!r} is not a training workdir")
    if not isinstance(saved, dict):
      raise CorruptFileError(_corrupt_message(self.config_path, "not a JSON object"))
    model = saved.get("model")
    if isinstance(model, dict) and "multi_label" in model:     # written before model.type
      legacy = model.pop("multi_label")
      model.setdefault("type", "multilabel" if legacy else "multiclass")
    defaults = default.get_config().to_dict()
    # frontend arguments the file lacks take the frontend's own defaults (in its constructor);
    # the default config's frontend block is another frontend's
    defaults["frontend"] = {}
    return ml_collections.ConfigDict(_fill_defaults(defaults, saved))

  def config_difference(self, config, sections=("frontend", "model")) -> str:
    """The keys of `sections` in which config differs from config.json, one per line."""
    try:
      saved = _flatten({s: self.load_config()[s].to_dict() for s in sections})
    except (FileNotFoundError, ValueError) as e:
      return f"  (cannot read the workdir's config: {e})"
    given = _flatten({s: config[s].to_dict() for s in sections})
    lines = [f"  {key}: {saved.get(key, '<unset>')!r} in {self.config_path}, "
             f"{given.get(key, '<unset>')!r} in the given config"
             for key in sorted(set(saved) | set(given)) if saved.get(key) != given.get(key)]
    return "\n".join(lines) or "  (no difference in frontend/model keys)"

  def model_mismatch(self, config, fingerprint: str, run_info, detail: str = "") -> RunError:
    """The error for a config whose model (fingerprint) is not the workdir's."""
    trained = run_info["model_fingerprint"] if run_info else "that of its checkpoints"
    return RunError(
        f"The given config does not match workdir {self.path}: it builds another model "
        f"(fingerprint {fingerprint}, the workdir's {trained}). Differences:\n"
        f"{self.config_difference(config)}\nNothing was written. Train this config in a new "
        "--workdir, or pass the workdir's own config." + (f"\n{detail}" if detail else ""))

  def check_model(self, config, fingerprint: str, run_info) -> None:
    """RunError unless the model of config (its fingerprint, its type) is the one the workdir
    trained (run_info: its run_info.json, None for a new or undescribed workdir)."""
    if run_info and fingerprint != run_info["model_fingerprint"]:
      raise self.model_mismatch(config, fingerprint, run_info)
    if run_info and run_info["multi_label"] != (config.model.type == "multilabel"):
      raise RunError(
          f"config.model.type={config.model.type!r}, but workdir {self.path} trained a "
          f"{'multilabel' if run_info['multi_label'] else 'multiclass'} model. Nothing was "
          "written. Train this config in a new --workdir.")

  # ------------------------------------------------------------------ run info

  def read_run_info(self) -> dict:
    """The dict `describe` wrote to run_info.json; a clear error naming the file if it is
    missing or corrupt."""
    path = self.run_info_path
    info = _read_json(path, f"{self.path!r} has no run description (written by train.main "
                            "since the workdir format has one; run train.main once more on "
                            "this workdir with its own config to write it)")
    required = ("format_version", "classes", "sample_rate", "crop_seconds", "multi_label",
                "model_fingerprint")
    missing = [k for k in required if not isinstance(info, dict) or k not in info]
    if missing:
      raise CorruptFileError(_corrupt_message(path, f"missing {', '.join(missing)}"))
    if info["format_version"] != RUN_INFO_VERSION:
      raise RunError(f"{path} has format_version {info['format_version']}; this code reads "
                     f"version {RUN_INFO_VERSION}")
    return info

  def has_run_info(self) -> bool:
    return tf.io.gfile.exists(self.run_info_path)

  def sound_run_info(self):
    """run_info.json, or None when there is none or it is corrupt (with a warning: the
    trainer rewrites it once the checkpoints prove they hold the given config's model)."""
    if not self.has_run_info():
      return None
    try:
      return self.read_run_info()
    except CorruptFileError as e:
      logging.warning("%s It is rewritten once the checkpoints are restored.", e)
      return None

  def check_data_matches(self, run_info: dict, dataset_info: dict, data_dir: str) -> None:
    """Raises RunError unless the data has the classes and sample rate the run trained on."""
    path = dataset_info_lib.path(data_dir)
    trained_ids = [c["id"] for c in run_info["classes"]]
    data_ids = [c["id"] for c in sorted(dataset_info["classes"], key=lambda c: c["index"])]
    if trained_ids != data_ids:
      differ = next((i for i, (a, b) in enumerate(zip(trained_ids, data_ids)) if a != b),
                    min(len(trained_ids), len(data_ids)))
      raise RunError(
          f"The data does not match workdir {self.path}: {self.run_info_path} has "
          f"{len(trained_ids)} classes, {path} has {len(data_ids)}; they differ from index "
          f"{differ} on. Use the data the run trained on, or a new --workdir.")
    if int(dataset_info["sample_rate"]) != int(run_info["sample_rate"]):
      raise RunError(
          f"The data does not match workdir {self.path}: the run trained at "
          f"{run_info['sample_rate']} Hz ({self.run_info_path}), {path} is at "
          f"{dataset_info['sample_rate']} Hz.")

  # ------------------------------------------------------------------ best, results, logs

  def read_best(self, metric: str = "mAP") -> float:
    """The centre-crop `metric` (mAP; accuracy for multiclass runs: metrics.SELECTION_METRIC)
    of best/'s checkpoint; -1 when the run has none yet."""
    path = os.path.join(self.best_dir, _BEST_JSON)
    if not tf.io.gfile.exists(path):
      return -1.0
    with tf.io.gfile.GFile(path) as f:
      best = json.load(f)
    if metric not in best:
      raise RunError(
          f"{path} records the best checkpoint by {sorted(set(best) - {'step'})}, not by "
          f"{metric}: the workdir was trained as another model type")
    return best[metric]

  def record_evaluation(self, results: dict, best=None) -> None:
    """eval_results.json (numpy scalars as floats) and, with best = (step, value, metric) of a
    checkpoint just saved to best/, best.json. The chief's only: other workers write nothing."""
    if self.worker:
      return
    best_json = os.path.join(self.best_dir, _BEST_JSON)
    atomic_json.write(self.eval_results_path, json.loads(json.dumps(results, default=float)))
    if best is not None:
      step, value, metric = best
      atomic_json.write(best_json, {"step": step, metric: value})

  def read_eval_results(self) -> dict:
    """eval_results.json as evaluation returned it (a metric written as null, being not
    finite, comes back as NaN); {} when there is none or it is unreadable."""
    try:
      with tf.io.gfile.GFile(self.eval_results_path) as f:
        results = json.load(f, object_hook=lambda d: {k: math.nan if v is None else v
                                                      for k, v in d.items()})
    except (tf.errors.NotFoundError, ValueError):
      return {}
    return results if isinstance(results, dict) else {}

  def write_imported_from(self, provenance: dict) -> None:
    """imported_from.json: what export.import_audax made this workdir from."""
    atomic_json.write(self._file(_IMPORTED_FROM), provenance)

  def logs_dir(self, name: str) -> str:
    """WORKDIR/train or /eval: the TensorBoard logs."""
    return self._file(_LOGS[name])

  def summary_writer(self, name: str):
    """The TensorBoard writer of WORKDIR/train or /eval (a no-op one on other workers)."""
    if not self.is_chief:
      return tf.summary.create_noop_writer()
    return tf.summary.create_file_writer(self.logs_dir(name))
