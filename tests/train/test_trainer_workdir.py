"""The trainer and its workdir: a mismatching config or checkpoint is refused before anything is
written, eval and export need only the workdir, damaged checkpoints fall back, SIGTERM saves.

Issue 25 (each failed on ec0ace3): the workdir lock, a final evaluation that always happens,
checkpoints without their index, leftovers of killed saves, resumes with fewer steps, corrupt
descriptions, strict JSON, input checked at train start, checkpoints rotated while read."""
import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys

from absl import logging as absl_logging
import pytest
import tensorflow as tf
import tf_keras

from export import main as export_main
from tests.harness import REPO, main_command, tiny_config, wait_for_line
from train import atomic_json, checkpoints, evaluation, preemption, train_loop
from train import fingerprint
from train import folder_lock
from train import workdir as workdir_lib


def _run(config, workdir: str, mode: str) -> dict:
  """What train.main runs in `mode` ("eval" does not go through the trainer)."""
  if mode == "eval":
    return evaluation.evaluate_run(config, workdir)
  return train_loop.train_and_evaluate(config, workdir, mode=mode)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
  """A run of one 6-step epoch (checkpoints at steps 3 and 6), no eval."""
  workdir = str(tmp_path_factory.mktemp("runs") / "mel8")
  config = tiny_config(data_dir)
  config.num_epochs = 1
  train_loop.train_and_evaluate(config, workdir, mode="train")
  return workdir


def _copy(workdir, tmp_path, name="run"):
  return shutil.copytree(workdir, tmp_path / name)


def _snapshot(path):
  return {os.path.relpath(p, path): open(p, "rb").read()
          for p in glob.glob(os.path.join(path, "**"), recursive=True) if os.path.isfile(p)}


def test_the_workdir_describes_the_run(trained, data_dir):
  info = workdir_lib.Workdir(trained).read_run_info()
  with open(os.path.join(data_dir, "dataset_info.json")) as f:
    assert info["classes"] == json.load(f)["classes"]
  assert info["sample_rate"] == 16000 and info["crop_seconds"] == 0.5 and info["multi_label"]
  model, _ = checkpoints.restore_model(trained)
  assert info["model_fingerprint"] == fingerprint.model_fingerprint(model)


@pytest.mark.parametrize("has_run_info", [True, False])
def test_a_config_for_another_model_is_refused_before_anything_is_written(
    trained, data_dir, tmp_path, has_run_info):
  """Before: config.json was overwritten with the other config, then a shape error."""
  workdir = _copy(trained, tmp_path)
  if not has_run_info:                            # a workdir from before run_info.json
    os.remove(workdir / "run_info.json")
  before = _snapshot(workdir)
  config = tiny_config(data_dir, "leaf")
  with pytest.raises(workdir_lib.RunError) as error:
    train_loop.train_and_evaluate(config, str(workdir), mode="train")
  message = str(error.value)
  assert f"does not match workdir {workdir}" in message
  assert f"frontend.name: 'mel' in {workdir / 'config.json'}, 'leaf' in the given config" in message
  assert "Nothing was written" in message
  assert _snapshot(workdir) == before


def test_data_with_other_classes_is_refused(trained, data_dir, tmp_path):
  other = shutil.copytree(data_dir, tmp_path / "data")
  info = json.loads((other / "dataset_info.json").read_text())
  info["classes"][1]["id"] = "/m/other"
  (other / "dataset_info.json").write_text(json.dumps(info))
  workdir = _copy(trained, tmp_path)
  for mode in ("train", "eval"):
    with pytest.raises(workdir_lib.RunError, match="they differ from index 1 on"):
      _run(tiny_config(str(other)), str(workdir), mode)


def test_an_empty_training_split_is_refused_at_start(data_dir, tmp_path):
  """Before: `End of sequence` from inside the training loop."""
  empty = shutil.copytree(data_dir, tmp_path / "data")
  info = json.loads((empty / "dataset_info.json").read_text())
  info["splits"]["train"].update(num_examples=0, files=[], num_skipped=5)
  (empty / "dataset_info.json").write_text(json.dumps(info))
  with pytest.raises(workdir_lib.RunError, match=r"Split 'train' of .*dataset_info.json has no "
                                                r"usable examples \(data prep skipped 5"):
    train_loop.train_and_evaluate(tiny_config(str(empty)), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_resume_skips_a_truncated_latest_checkpoint_with_a_warning(trained, data_dir, tmp_path,
                                                                  caplog):
  """Before: IndexError: Read less bytes than requested, and no resume at all."""
  workdir = _copy(trained, tmp_path)
  latest = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
  assert latest.endswith("ckpt-6")
  data = glob.glob(latest + ".data-*")[0]
  os.truncate(data, os.path.getsize(data) // 2)
  config = tiny_config(data_dir)
  config.num_epochs = 2
  verbosity = absl_logging.get_verbosity()     # an earlier test may have left WARNING
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    with caplog.at_level("INFO"):
      results = train_loop.train_and_evaluate(config, str(workdir), mode="train")
  finally:
    absl_logging.set_verbosity(verbosity)
  assert f"Checkpoint {latest} is damaged" in caplog.text
  assert "Resumed from" in caplog.text and "ckpt-3 at step 3" in caplog.text
  assert results["final_step"] == 12


def test_eval_reads_crop_length_and_classes_from_the_workdir(trained, data_dir, tmp_path,
                                                            monkeypatch):
  moved = shutil.move(shutil.copytree(data_dir, tmp_path / "copy"), tmp_path / "moved")
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  monkeypatch.chdir(elsewhere)
  seen = {}
  real_evaluate = evaluation.evaluate
  monkeypatch.setattr(evaluation, "evaluate",
                      lambda model, config: seen.update(crop=config.dataset.crop_seconds)
                      or real_evaluate(model, config))
  config = tiny_config(str(moved))
  config.dataset.crop_seconds = 0.25          # the run trained on 0.5 s crops
  config.dataset.full_clip_eval = False
  results = evaluation.evaluate_run(config, trained)
  assert seen["crop"] == 0.5 and results["centre_crop"]["num_examples"] == 24


@pytest.fixture(scope="module")
def other_run(data_dir, tmp_path_factory):
  """A run with 16 mel filters: the same variables as `trained` (mel has none), another model."""
  workdir = str(tmp_path_factory.mktemp("runs") / "mel16")
  config = tiny_config(data_dir)
  config.frontend.n_filters = 16
  config.num_train_steps = 3
  train_loop.train_and_evaluate(config, workdir, mode="train")
  return workdir


def test_a_checkpoint_of_another_run_is_refused_naming_both(trained, other_run, tmp_path):
  """Before: export exited 0 with the other run's weights behind this run's frontend."""
  path = tf.train.latest_checkpoint(os.path.join(other_run, "checkpoints"))
  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    export_main.export(trained, str(tmp_path / "out"), checkpoint=path)
  assert path in str(error.value) and trained in str(error.value)
  assert f"belongs to the run in {other_run}" in str(error.value)
  assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == []


def test_a_config_json_that_builds_another_model_is_refused(trained, other_run, tmp_path):
  workdir = _copy(trained, tmp_path)
  shutil.copy(os.path.join(other_run, "config.json"), workdir / "config.json")
  with pytest.raises(checkpoints.CheckpointMismatchError, match=r"config.json builds a model "
                     r"\(fingerprint \w+\) other than the one trained"):
    checkpoints.restore_model(str(workdir))


@pytest.mark.slow
def test_export_needs_only_the_workdir(trained, data_dir, tmp_path):
  """issue 8: export read the classes through config.dataset.data_dir (relative to the CWD)."""
  workdir = _copy(trained, tmp_path)
  config = json.loads((workdir / "config.json").read_text())
  config["dataset"]["data_dir"] = "demo_out/gone"            # as a demo config stores it
  (workdir / "config.json").write_text(json.dumps(config))
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  proc = subprocess.run(
      [sys.executable, "-m", "export.main", f"--workdir={workdir}", "--output_dir=out",
       "--formats=saved_model", "--num_verify_clips=4", "--latency_repeats=1"],
      cwd=elsewhere, capture_output=True, text=True, timeout=600,
      env={**os.environ, "PYTHONPATH": REPO})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "verifying on synthetic signals" in proc.stderr
  out = elsewhere / "out"
  report = json.loads((out / "verification.json").read_text())
  assert report["clips"].startswith("synthetic") and report["keras_mAP"] is None
  assert max(report["savedmodel"]["serving_default"]["max_abs_diff"].values()) <= 1e-5
  names = (out / "class_names.csv").read_text()
  assert "/m/tone0" in names and "4000 Hz" in names
  assert json.loads((out / ".tf_frontends_export.json").read_text())["checkpoint"] == \
      os.path.join("best", "ckpt-6")


class _Requested(preemption.StopSignals):
  """preemption.StopSignals after SIGTERM arrived (during the first train_loop call)."""

  def __init__(self):
    super().__init__()
    self.signum = signal.SIGTERM


def test_stop_request_saves_a_checkpoint_at_the_current_step(data_dir, tmp_path):
  config = tiny_config(data_dir)
  config.checkpoint_every_steps = 1000          # only the preemption saves
  config.steps_per_loop = 2
  config.log_every_steps = 2
  workdir = str(tmp_path / "run")
  with pytest.raises(preemption.Preempted) as stopped:
    train_loop.train_and_evaluate(config, workdir, mode="train", stop=_Requested())
  assert stopped.value.step == 2
  assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_next_start_resumes_there(data_dir, tmp_path):
  """Before: exit 143 without a checkpoint (the recipe saves every 1000 steps)."""
  overrides = {"num_epochs": 6, "checkpoint_every_steps": 1000, "steps_per_loop": 1,
               "log_every_steps": 1}
  workdir = tmp_path / "run"
  command = main_command(data_dir, workdir, overrides, "train")
  proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  output = wait_for_line(proc, r"step 2/36 ", timeout_s=300)
  proc.send_signal(signal.SIGTERM)
  output += proc.communicate(timeout=120)[0]
  assert proc.returncode == preemption.EXIT_STATUS, output[-3000:]
  latest = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
  assert latest and f"SIGTERM: saved checkpoint {latest} at step" in output
  step = int(latest.rsplit("-", 1)[1])
  assert 2 <= step < 36
  resumed = subprocess.run(main_command(data_dir, workdir, {**overrides, "num_epochs": 1},
                                        "train"),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
  assert f"Resumed from {latest} at step {step}" in resumed.stderr, resumed.stderr[-3000:]


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130_without_a_traceback(data_dir, tmp_path):
  """Before: a KeyboardInterrupt traceback and no checkpoint (up to checkpoint_every_steps lost).
  Resuming from the checkpoint is the SIGTERM test's."""
  overrides = {"num_epochs": 6, "checkpoint_every_steps": 1000, "steps_per_loop": 1,
               "log_every_steps": 1}
  workdir = tmp_path / "run"
  proc = subprocess.Popen(main_command(data_dir, workdir, overrides, "train"), cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  output = wait_for_line(proc, r"step 2/36 ", timeout_s=300)
  proc.send_signal(signal.SIGINT)
  output += proc.communicate(timeout=120)[0]
  assert proc.returncode == 130, output[-3000:]
  latest = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
  assert latest and f"SIGINT: saved checkpoint {latest} at step" in output
  assert "Traceback" not in output and "KeyboardInterrupt" not in output


def test_restoring_a_mixed_precision_run_leaves_the_global_policy_alone(trained, tmp_path):
  """Before: restore_model set the global policy to the run's, so an export changed it for the
  whole process."""
  workdir = str(_copy(trained, tmp_path))
  config = workdir_lib.Workdir(workdir).load_config()
  config.mixed_precision = "bfloat16"       # same variables (float32), other compute dtype
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json())
  assert tf_keras.mixed_precision.global_policy().name == "float32"
  model, _ = checkpoints.restore_model(workdir)
  assert tf_keras.mixed_precision.global_policy().name == "float32"
  assert model.backbone.dtype_policy.name == "mixed_bfloat16"        # the run's, kept
  assert model.frontend.compute_dtype == "float32"


def test_training_leaves_the_callers_config_as_given(data_dir, tmp_path):
  """Before: the trainer wrote num_classes from dataset_info.json into the caller's config."""
  config = tiny_config(data_dir)
  config.num_train_steps = 1
  given = config.to_dict()
  workdir = str(tmp_path / "run")
  train_loop.train_and_evaluate(config, workdir, mode="train")
  assert config.to_dict() == given and config.model.num_classes == -1
  # decided once, recorded
  assert workdir_lib.Workdir(workdir).load_config().model.num_classes == 3


# ---------------------------------------------------------------- issue 25

@pytest.fixture
def info_logs(caplog):
  """caplog at INFO, absl's verbosity too (an earlier test may have left WARNING)."""
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  with caplog.at_level("INFO"):
    yield caplog
  absl_logging.set_verbosity(verbosity)


def _one_epoch(data_dir):
  config = tiny_config(data_dir)
  config.num_epochs = 1
  return config


def test_a_rerun_evaluates_when_the_results_are_older_than_the_last_checkpoint(
    trained, data_dir, tmp_path, monkeypatch):
  """Before: killed during the final evaluation, the rerun exited 0 without evaluating (the
  trainer evaluated only inside its training loop)."""
  workdir = str(shutil.copytree(trained, tmp_path / "run"))
  atomic_json.write(os.path.join(workdir, "eval_results.json"),
                    {"step": 3, "centre_crop": {"mAP": 0.1}})       # an earlier evaluation
  config = _one_epoch(data_dir)
  config.dataset.full_clip_eval = False           # centre crops are enough here, and quicker
  results = train_loop.train_and_evaluate(config, workdir)
  assert results["step"] == 6 and results["centre_crop"]["num_examples"] == 24
  with open(os.path.join(workdir, "eval_results.json")) as f:
    assert json.load(f)["step"] == 6
  with open(os.path.join(workdir, "best", "best.json")) as f:
    assert json.load(f)["step"] == 6

  # Up to date: a rerun does not evaluate again, and reports the results it has (a metric
  # written as null, d' of a perfect AUC, reads back as NaN and prints).
  path = os.path.join(workdir, "eval_results.json")
  with open(path) as f:
    stored = json.load(f)
  stored["centre_crop"]["dprime"] = None
  atomic_json.write(path, stored)
  monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: pytest.fail("evaluated again"))
  again = train_loop.train_and_evaluate(config, workdir)
  assert again["step"] == 6 and again["centre_crop"]["mAP"] == results["centre_crop"]["mAP"]
  assert math.isnan(again["centre_crop"]["dprime"])
  assert "nan" in evaluation.format_results(again).splitlines()[1]


def test_checkpoints_without_their_index_are_resumed_never_overwritten(
    trained, data_dir, tmp_path, info_logs):
  """Before: without checkpoints/checkpoint the run restarted from step 0 and overwrote them."""
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  os.remove(workdir / "checkpoints" / "checkpoint")
  saved = {name: data for name, data in _snapshot(workdir / "checkpoints").items()}
  results = train_loop.train_and_evaluate(_one_epoch(data_dir), str(workdir), mode="train")
  assert results["final_step"] == 6
  assert "has no checkpoint index" in info_logs.text and "ckpt-6, ckpt-3" in info_logs.text
  assert f"Resumed from {workdir / 'checkpoints' / 'ckpt-6'} at step 6" in info_logs.text
  after = _snapshot(workdir / "checkpoints")
  assert {n: after[n] for n in saved} == saved                  # not one byte rewritten
  assert checkpoints.in_directory(str(workdir / "checkpoints"))[0].endswith("ckpt-6")


def test_leftovers_of_killed_saves_are_removed_and_nothing_else(trained, data_dir, tmp_path):
  """Before: every kill during a save left a ckpt-N_temp folder (225 MB after five)."""
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  ours = [workdir / "checkpoints" / "ckpt-9_temp", workdir / "best" / "ckpt-2_temp"]
  theirs = [workdir / "checkpoints" / "notes_temp", workdir / "checkpoints" / "ckpt-9_tmp"]
  for folder in ours + theirs:
    folder.mkdir()
    (folder / "part-00000-of-00001.index").write_bytes(b"x")
  train_loop.train_and_evaluate(_one_epoch(data_dir), str(workdir), mode="train")
  assert [f.exists() for f in ours] == [False, False]
  assert [f.exists() for f in theirs] == [True, True]


def test_a_resume_with_fewer_steps_than_done_is_an_error_and_writes_nothing(
    trained, data_dir, tmp_path):
  """Before: it did nothing, said nothing and rewrote config.json."""
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  before = _snapshot(workdir)
  config = _one_epoch(data_dir)
  config.num_train_steps = 4
  with pytest.raises(workdir_lib.RunError, match=f"Workdir {workdir} has trained 6 steps, more "
                                                 "than the 4 the config asks for"):
    train_loop.train_and_evaluate(config, str(workdir), mode="train")
  assert _snapshot(workdir) == before


def test_an_empty_config_or_run_info_beside_intact_checkpoints_is_rewritten(
    trained, data_dir, tmp_path):
  """Before: "corrupt ... retrain in a new workdir", though the checkpoints were intact."""
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  expected = {name: (workdir / name).read_text()
              for name in ("config.json", "run_info.json")}
  for name in expected:
    (workdir / name).write_text("")
  with pytest.raises(workdir_lib.RunError) as error:
    checkpoints.restore_model(str(workdir))                     # what export and eval see
  assert "empty" in str(error.value) and "retrain" not in str(error.value)
  assert "run train.main once more on this workdir with the run's own config" in str(error.value)
  results = train_loop.train_and_evaluate(_one_epoch(data_dir), str(workdir), mode="train")
  assert results["final_step"] == 6
  assert {name: (workdir / name).read_text() for name in expected} == expected


def test_a_locked_workdir_is_refused_naming_the_holder(trained, data_dir, tmp_path):
  """Before: a second trainer on the same workdir resumed from the first's checkpoint and both
  wrote ckpt-8..24."""
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  with folder_lock.lock(str(workdir), "the first trainer"):
    before = _snapshot(workdir)
    for mode in ("train", "eval"):
      with pytest.raises(workdir_lib.RunError) as error:
        _run(_one_epoch(data_dir), str(workdir), mode)
      assert f"Workdir {workdir} is in use by pid {os.getpid()} on host " in str(error.value)
      assert "the first trainer started " in str(error.value)
    assert _snapshot(workdir) == before
  assert not (workdir / folder_lock.LOCK_NAME).exists()


def test_a_workdir_that_is_a_file_is_a_clear_error(data_dir, tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("mine")
  with pytest.raises(workdir_lib.RunError, match=f"--workdir {path} is a file, not a folder"):
    train_loop.train_and_evaluate(_one_epoch(data_dir), str(path))
  assert path.read_text() == "mine"


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "dataset_info.json").write_text("{}"), "dataset_info.json: no 'classes' key"),
    (lambda d: os.remove(d / "train-00001-of-00002.tfrecord"),
     "Split 'train' of .*dataset_info.json lists shards that are not there: .*"
     "train-00001-of-00002.tfrecord"),
])
def test_broken_data_is_reported_at_train_start(data_dir, tmp_path, damage, message):
  """Before: a KeyError traceback ({}), a NotFoundError from inside the loop (a deleted shard)."""
  data = shutil.copytree(data_dir, tmp_path / "data")
  damage(data)
  with pytest.raises(ValueError, match=message):      # RunError or the reader's DataError
    train_loop.train_and_evaluate(tiny_config(str(data)), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key, value", [("optimizer.weight_decay", -1e-4),
                                        ("optimizer.clip_global_norm", -1.0),
                                        ("dataset.mixup_alpha", -0.2)])
def test_negative_regularisation_is_refused_before_the_workdir_is_written(
    data_dir, tmp_path, key, value):
  """Before: accepted (mixup_alpha wrote the workdir, then crashed)."""
  config = tiny_config(data_dir)
  config.update_from_flattened_dict({key: value})
  with pytest.raises(ValueError, match=f"{key} must be >= 0"):
    train_loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_json_files_are_strict_non_finite_values_become_null(tmp_path, info_logs):
  """Before: eval_results.json held Infinity / NaN, which JSON readers refuse."""
  path = str(tmp_path / "eval_results.json")
  workdir_lib.Workdir(str(tmp_path)).record_evaluation({
      "centre_crop": {"mAP": float("nan"), "dprime": float("inf"), "mAUC": 0.5},
      "per_class": [0.25, float("-inf")]})

  def refuse(token):
    raise ValueError(f"not JSON: {token}")
  with open(path) as f:
    results = json.load(f, parse_constant=refuse)
  assert results == {"centre_crop": {"mAP": None, "dprime": None, "mAUC": 0.5},
                     "per_class": [0.25, None]}
  assert "centre_crop.mAP=nan, centre_crop.dprime=inf, per_class[1]=-inf" in info_logs.text


def test_a_checkpoint_rotated_away_while_export_reads_it_is_not_called_damaged(
    trained, tmp_path, monkeypatch):
  """Before: export of --checkpoint=latest while training rotated checkpoints failed "Every
  checkpoint is damaged" (the listed ones had been deleted meanwhile)."""
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  folder = str(workdir / "checkpoints")
  real_candidates = checkpoints.candidates

  def listed_then_rotated(workdir_, which):
    listed = real_candidates(workdir_, which)
    if len(listed) == 2:                 # the first listing: the trainer saves ckpt-9, drops both
      for path in glob.glob(os.path.join(folder, "ckpt-6.*")):
        os.rename(path, path.replace("ckpt-6", "ckpt-9"))
      for path in glob.glob(os.path.join(folder, "ckpt-3.*")):
        os.remove(path)
      tf.compat.v1.train.update_checkpoint_state(folder, os.path.join(folder, "ckpt-9"))
    return listed
  monkeypatch.setattr(checkpoints, "candidates", listed_then_rotated)
  _, _, path = checkpoints.restore_run(str(workdir), "latest")
  assert path == os.path.join(folder, "ckpt-9")


def test_export_while_a_trainer_holds_the_workdir_refuses_latest_and_names_it(
    trained, tmp_path, monkeypatch, info_logs):
  """latest is refused, naming the trainer; best is read (restore_run copes with rotation)
  with a warning naming whose run it is."""
  workdir = str(shutil.copytree(trained, tmp_path / "run"))

  def restored(workdir_, which):
    raise RuntimeError(f"restore_run({which})")
  monkeypatch.setattr(checkpoints, "restore_run", restored)
  with folder_lock.lock(workdir, "train.main --mode=train"):
    with pytest.raises(workdir_lib.RunError,
                       match=rf"{workdir} is being trained by pid {os.getpid()} on host .*"
                             r"train.main --mode=train started .*checkpoints/ckpt-N"):
      export_main.export(workdir, str(tmp_path / "out"), checkpoint="latest")
    with pytest.raises(RuntimeError, match=r"restore_run\(best\)"):
      export_main.export(workdir, str(tmp_path / "out"), checkpoint="best")
  assert (f"{workdir} is being written by pid {os.getpid()} on host " in info_logs.text
          and "exporting its best checkpoint as of now" in info_logs.text)
