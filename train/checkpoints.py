"""The one place that finds a run's checkpoints and restores them completely.

    candidates(workdir, "best" | "latest" | PATH)   checkpoint paths to try, newest first
    restore(checkpoint, model, paths)              the first readable one, model weights checked
    restore_run(workdir, "best" | "latest" | PATH) (model, config, path) from the workdir alone

`workdir`: a train.workdir.Workdir (or its path); it names the folders.

"best" is WORKDIR/best, falling back to WORKDIR/checkpoints when the run never evaluated;
"latest" is WORKDIR/checkpoints; a PATH (a checkpoint prefix) is that one alone. A damaged
checkpoint (truncated or unreadable files) is skipped with a warning naming it and the next
older one is restored. A checkpoint whose model variables differ from the model's (another
frontend, another filter count, another run) is refused before anything is assigned: restores
are complete for the model. Optimizer state may be absent (an imported or best/ checkpoint);
then the optimizer starts fresh, with a warning.

Checkpoint files without their `checkpoint` index (copied without it, or the index lost) are
found by name (ckpt-N.index), newest first, with a warning; the trainer writes the index back
(restore_index) so that it resumes from them and rotates them instead of starting over. A
checkpoint removed while it is being read (a running trainer rotating checkpoints/ or best/)
is not damaged: "best" and "latest" list the folder again and read the newest one.
"""
import os
import re

from absl import logging
import tensorflow as tf

from train import fingerprint
from train import models
from train import workdir as workdir_lib

# tf.train.CheckpointManager's file names: PREFIX-N.index / .data-*, and the folder a sharded
# save writes first (renamed to the final files when complete; left behind by a kill).
_PREFIX = re.escape(workdir_lib.CHECKPOINT_PREFIX)
_CHECKPOINT_FILE = re.compile(rf"^{_PREFIX}-(\d+)\.index$")
_PARTIAL_SAVE = re.compile(rf"^{_PREFIX}-\d+_temp$")
_VANISHED_RETRIES = 5
# Reading a truncated or corrupt checkpoint raises one of these.
_DAMAGED = (tf.errors.OpError, IndexError, ValueError, UnicodeDecodeError)


class CheckpointMismatchError(workdir_lib.RunError):
  """The checkpoint holds another model than the one being restored."""


class CheckpointsVanishedError(IOError):
  """Every checkpoint tried was removed while it was being read."""


def _unindexed(directory: str) -> list:
  """Prefixes of the ckpt-N checkpoints in directory by file name, newest first."""
  if not tf.io.gfile.isdir(directory):
    return []
  numbered = [(int(m.group(1)), m.group(0)[:-len(".index")])
              for m in map(_CHECKPOINT_FILE.match, tf.io.gfile.listdir(directory)) if m]
  return [os.path.join(directory, name) for _, name in sorted(numbered, reverse=True)]


def in_directory(directory: str) -> list:
  """Checkpoint prefixes a CheckpointManager recorded in directory, newest first; without its
  index, the ckpt-N files found there (with a warning naming them)."""
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    found = _unindexed(directory)
    if found:
      logging.warning("%s has no checkpoint index (%s): using the checkpoint files found "
                      "there: %s.", directory, os.path.join(directory, "checkpoint"),
                      ", ".join(os.path.basename(p) for p in found))
    return found
  # TF has already joined the recorded names to `directory` (relative or absolute)
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  return [p for p in reversed(paths) if tf.io.gfile.exists(p + ".index")]


def restore_index(directory: str) -> None:
  """Writes directory's `checkpoint` index from the ckpt-N files when it is missing, so that a
  CheckpointManager there resumes from them and rotates them (it reads only its index)."""
  if tf.train.get_checkpoint_state(directory) is not None:
    return
  found = in_directory(directory)
  if found:
    tf.compat.v1.train.update_checkpoint_state(directory, found[0], list(reversed(found)))
    logging.warning("Wrote %s for the checkpoints found there.",
                    os.path.join(directory, "checkpoint"))


def remove_partial_saves(directory: str) -> list:
  """Removes the ckpt-N_temp folders that saves killed half-way left in directory (a
  checkpoints/ or best/ folder whose writer holds the workdir's lock); returns them."""
  removed = []
  for name in tf.io.gfile.listdir(directory) if tf.io.gfile.isdir(directory) else []:
    path = os.path.join(directory, name.rstrip("/"))
    if _PARTIAL_SAVE.match(name.rstrip("/")) and tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
      removed.append(path)
  return removed


def managers(checkpoint: tf.train.Checkpoint, directories, max_to_keep: int):
  """(latest, best) CheckpointManagers of `checkpoint` in directories (the folders a worker
  saves to: Workdir.saving_dirs), after removing what killed saves left there and writing
  back a lost index (so that the managers resume from and rotate the files found)."""
  for directory in directories:      # before a CheckpointManager reads its index
    for path in remove_partial_saves(directory):
      logging.info("Removed %s, left by a save that was killed.", path)
    restore_index(directory)
  return (tf.train.CheckpointManager(checkpoint, directories[0], max_to_keep=max_to_keep),
          tf.train.CheckpointManager(checkpoint, directories[1], max_to_keep=1))


def candidates(workdir, which: str = "best") -> list:
  """Checkpoint prefixes to try in order; raises FileNotFoundError when there is none."""
  if which not in ("best", "latest"):
    if not tf.io.gfile.exists(which + ".index"):
      raise FileNotFoundError(f"Checkpoint {which!r} not found (no {which}.index).")
    return [which]
  workdir = workdir_lib.Workdir.of(workdir)
  latest = in_directory(workdir.checkpoints_dir)
  if which == "latest":
    paths = latest
  else:
    best = in_directory(workdir.best_dir)
    if not best and latest:
      logging.warning("No best/ checkpoint in %s (the run never evaluated); using the latest.",
                      workdir)
    paths = best + latest
  if not paths:
    raise FileNotFoundError(
        f"No checkpoint in {workdir.path!r}: {workdir.checkpoints_dir} and "
        f"{workdir.best_dir} hold none. Train first "
        "(python -m train.main --config=... --workdir=...).")
  return paths


def check_matches(model, path: str, model_description: str) -> None:
  """Raises CheckpointMismatchError unless the checkpoint's model variables are the model's
  and, when the checkpoint lies in a workdir (WORKDIR/checkpoints/ckpt-N), unless that run's
  fingerprint is the model's (mel filterbanks have no variables to compare)."""
  owner = workdir_lib.Workdir.owning(path)
  try:
    theirs = (owner.read_run_info()["model_fingerprint"]
              if owner is not None and owner.has_run_info() else None)
  except workdir_lib.CorruptFileError:    # the variables are still compared below
    theirs = None
  if theirs is not None:
    ours = fingerprint.model_fingerprint(model)
    if theirs != ours:
      raise CheckpointMismatchError(
          f"Checkpoint {path} does not hold {model_description}: it belongs to the run in "
          f"{owner} (model fingerprint {theirs}, {model_description}: {ours}).")
  expected = fingerprint.model_structure(model)
  found = fingerprint.checkpoint_structure(path)
  if found != expected:
    raise CheckpointMismatchError(
        f"Checkpoint {path} does not hold {model_description}: its model variables differ "
        f"({fingerprint.describe_difference(expected, found)}). It belongs to another run "
        "or config.")


def restore(checkpoint: tf.train.Checkpoint, model, paths, *,
            model_description: str = "this model") -> str:
  """Restores the first readable checkpoint of `paths` into `checkpoint`; returns its path.

  `checkpoint` holds `model` under "model" (and optionally "optimizer", "step"). Every
  model variable is restored or an error is raised; damaged checkpoints are skipped with a
  warning; a mismatching one raises CheckpointMismatchError (an older one would not match
  either). Raises IOError when every candidate is damaged.
  """
  damaged, vanished = [], []
  for path in paths:
    try:
      check_matches(model, path, model_description)
      has_optimizer = any(key.startswith("optimizer/")
                          for key, _ in tf.train.list_variables(path))
      status = checkpoint.restore(path)
      if has_optimizer or not hasattr(checkpoint, "optimizer"):
        status.assert_existing_objects_matched()
      else:
        logging.warning("%s holds no optimizer state: the optimizer starts fresh.", path)
      status.expect_partial()        # an optimizer in the file that this restore does not need
    except _DAMAGED as e:
      if isinstance(e, CheckpointMismatchError):
        raise
      if _vanished(path):
        logging.info("Checkpoint %s was removed while being read (rotated by a running "
                     "trainer).", path)
        vanished.append(path)
        continue
      logging.warning("Checkpoint %s is damaged (%s: %s); trying the previous one.", path,
                      type(e).__name__, str(e).splitlines()[0] if str(e) else "")
      damaged.append(path)
      continue
    if damaged:
      logging.warning("Restored %s instead of the damaged %s.", path, ", ".join(damaged))
    return path
  if vanished:
    raise CheckpointsVanishedError(
        f"Checkpoints {', '.join(vanished)} were removed while being read"
        + (f"; damaged: {', '.join(damaged)}" if damaged else ""))
  raise IOError(f"Every checkpoint is damaged: {', '.join(damaged)}")


def _vanished(path: str) -> bool:
  """True when checkpoint `path` is gone from its folder (not damaged: removed)."""
  directory = os.path.dirname(path)
  return (not tf.io.gfile.exists(path + ".index")
          or (tf.train.get_checkpoint_state(directory) is not None
              and path not in in_directory(directory)))


def restore_run(workdir, which: str = "best"):
  """(model, config, checkpoint path) of a run, restored from the workdir alone.

  which: "best" (WORKDIR/best, else the latest), "latest" (WORKDIR/checkpoints) or a
  checkpoint path; a damaged checkpoint falls back to the previous one. Raises
  CheckpointMismatchError when the checkpoint or the config.json holds another model than
  the one the run trained (run_info.json's fingerprint). The model's layers take the run's
  mixed-precision policy; the process's global policy is left unchanged.
  """
  workdir = workdir_lib.Workdir.of(workdir)
  config = workdir.load_config()
  info = workdir.read_run_info()
  paths = candidates(workdir, which)
  model = models.build_model(config, info["sample_rate"])
  built = fingerprint.model_fingerprint(model)
  if built != info["model_fingerprint"]:
    raise CheckpointMismatchError(
        f"{workdir.config_path} builds a model (fingerprint {built}) other than the one "
        f"trained in {workdir} ({workdir.run_info_path}: {info['model_fingerprint']}).")
  step = tf.Variable(0, dtype=tf.int64)
  for attempt in range(_VANISHED_RETRIES):
    try:
      path = restore(tf.train.Checkpoint(model=model, step=step), model, paths,
                     model_description=f"the model of workdir {workdir}")
      break
    except CheckpointsVanishedError as e:
      if which not in ("best", "latest") or attempt == _VANISHED_RETRIES - 1:
        raise CheckpointsVanishedError(
            f"{e} (is a trainer rotating them?). Retry, or stop the trainer first.") from None
      paths = candidates(workdir, which)      # the trainer's newer ones
  logging.info("Restored %s (step %d)", path, int(step.numpy()))
  return model, config, path


def restore_model(workdir, which: str = "best"):
  """(model, config) of a run (restore_run without the path)."""
  model, config, _ = restore_run(workdir, which)
  return model, config
