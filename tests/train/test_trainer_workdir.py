"""The trainer and its workdir: a mismatching config or checkpoint is refused before anything is
written, eval and export need only the workdir, damaged checkpoints fall back, SIGTERM saves."""
import glob
import json
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
from train import checkpoints, evaluation, preemption, train_loop
from train import workdir as workdir_lib


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
  info = workdir_lib.read_run_info(trained)
  with open(os.path.join(data_dir, "dataset_info.json")) as f:
    assert info["classes"] == json.load(f)["classes"]
  assert info["sample_rate"] == 16000 and info["crop_seconds"] == 0.5 and info["multi_label"]
  model, _ = checkpoints.restore_model(trained)
  assert info["model_fingerprint"] == workdir_lib.model_fingerprint(model)


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
      train_loop.train_and_evaluate(tiny_config(str(other)), str(workdir), mode=mode)


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
  results = train_loop.train_and_evaluate(config, trained, mode="eval")
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


def test_restoring_a_mixed_precision_run_leaves_the_global_policy_alone(trained, tmp_path):
  """Before: restore_model set the global policy to the run's, so an export changed it for the
  whole process."""
  workdir = str(_copy(trained, tmp_path))
  config = workdir_lib.load_config(workdir)
  config.mixed_precision = "bfloat16"       # same variables (float32), other compute dtype
  workdir_lib.write_config(workdir, config)
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
  assert workdir_lib.load_config(workdir).model.num_classes == 3      # decided once, recorded
