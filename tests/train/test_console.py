"""The binaries' console: no TensorFlow C++ INFO/WARNING lines unless --verbose, no retracing."""
import glob
import logging
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.harness import REPO
from tests.harness import main_command
from tests.harness import tiny_config
from tests.harness import write_dataset
from train import console
from train import evaluation, models

# TensorFlow's C++ log lines: "2026-11-26 17:06:29.970764: I tensorflow/core/util/port.cc:153] ..."
TF_INFO_OR_WARNING = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] ", re.MULTILINE)
BINARIES = ["train.main", "export.main", "train.data.prepare_data", "train.data.demo.demo_data",
            "train.frontends_demo"]


def run(command, timeout=600):
  """A command in a fresh process with the user's environment (no log level set)."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  proc = subprocess.run(command, capture_output=True, text=True,
                        timeout=timeout, cwd=REPO, env=env)
  return proc, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("binary", BINARIES)
def test_tensorflow_log_lines_only_with_verbose(binary):
  _, quiet_output = run([sys.executable, "-m", binary, "--helpfull"])
  _, verbose_output = run([sys.executable, "-m", binary, "--helpfull", "--verbose"])
  assert "--[no]verbose" in quiet_output, quiet_output[-3000:]   # absl's help: exit status 1
  assert not TF_INFO_OR_WARNING.search(quiet_output), quiet_output[:3000]
  if not os.path.exists(console.NVIDIA_DRIVER):       # CUDA's start-up error: no GPU to miss
    assert "cuInit" not in quiet_output, quiet_output[:3000]
  assert TF_INFO_OR_WARNING.search(verbose_output), verbose_output[:3000]


def test_score_step_traces_once_for_crops_and_clips_of_every_length(data_dir):
  """Evaluation's batches have one shape: the last batch is padded, clips become windows."""
  config = tiny_config(data_dir)
  config.model.num_classes = 3
  config.eval_batch_size = 5                            # 24 clips: a partial last batch
  model = models.build_model(config)
  step = evaluation.make_score_step(model, tf.distribute.get_strategy())
  for mode in ("eval", "full_clip"):                    # eval clips are 0.25 s to 1.25 s long
    evaluation.score_clips(model, config, "eval", mode, step=step)
  assert step.experimental_get_tracing_count() == 1


def test_library_records_are_dropped_and_ours_kept():
  drop = console.LibraryRecordFilter()
  record = lambda path, level: logging.LogRecord("absl", level, path, 1, "m", None, None)
  site = os.path.join(os.sep, "venv", "lib", "site-packages")
  assert not drop.filter(record(os.path.join(site, "tensorflow", "saver.py"), logging.WARNING))
  assert drop.filter(record(os.path.join(site, "tensorflow", "saver.py"), logging.ERROR))
  assert drop.filter(record(os.path.join(REPO, "train", "train_loop.py"), logging.INFO))


@pytest.mark.slow
def test_export_output_is_the_binarys_own(tmp_path):
  """python -m export.main on a tiny trained workdir: no TensorFlow INFO/WARNING lines."""
  data_dir = write_dataset(str(tmp_path / "tones"), num_train=16, num_eval=12)
  workdir = str(tmp_path / "workdir")
  proc, output = run(main_command(data_dir, workdir, overrides={"num_epochs": 1}))
  assert proc.returncode == 0, output[-3000:]
  proc, output = run([sys.executable, "-m", "export.main", f"--workdir={workdir}",
                      f"--output_dir={tmp_path / 'out'}", "--formats=saved_model,tflite_int8",
                      "--num_verify_clips=4", "--num_representative_clips=4",
                      "--latency_repeats=1"])
  assert proc.returncode == 0, output[-3000:]
  assert not TF_INFO_OR_WARNING.search(output), output[:3000]
  ours = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "*", "*.py"))}
  logged_from = re.findall(r"^[IW]\d{4} [\d:. ]+ \d+ (\S+):\d+\]", output, re.MULTILINE)
  assert logged_from and set(logged_from) <= ours, sorted(set(logged_from) - ours)
  for noise in ("XNNPACK", "fully_quantize", "INFO:tensorflow", "WARNING:tensorflow"):
    assert noise not in output, noise
  assert "modules written to" in output


@pytest.mark.parametrize("verbose", [False, True])
def test_fail_prints_one_line_and_the_traceback_only_with_verbose(verbose, monkeypatch, capsys):
  """Issue 25: a user's mistake (a config value, a full disk) printed a traceback."""
  monkeypatch.setattr(sys, "argv", ["train"] + ["--verbose"] * verbose)
  try:
    raise tf.errors.ResourceExhaustedError(None, None, "/out/x; No space left on device\n  in C++")
  except tf.errors.OpError as e:
    with pytest.raises(SystemExit) as exit_:
      console.fail("export", e, 1)
  assert exit_.value.code == 1
  stderr = capsys.readouterr().err
  assert stderr.endswith("export failed: /out/x; No space left on device\n")
  assert ("Traceback (most recent call last)" in stderr) == verbose
  assert len(stderr.splitlines()) == 1 or verbose


def test_fail_keeps_a_list_of_bad_values_whole(monkeypatch, capsys):
  monkeypatch.setattr(sys, "argv", ["train"])
  with pytest.raises(SystemExit) as exit_:
    console.fail("train", ValueError("Bad config:\n  a must be >= 0\n  b must be >= 1"), 2)
  assert exit_.value.code == 2
  assert capsys.readouterr().err == ("train failed: Bad config:\n  a must be >= 0\n"
                                     "  b must be >= 1\n")


def test_an_unknown_config_key_is_a_usage_error_naming_it(tmp_path):
  """Issue 25: ml_collections' AttributeError escaped flag parsing as a 40-line traceback."""
  proc = subprocess.run(main_command(str(tmp_path / "data"), tmp_path / "run",
                                     {"optimizer.weight_decy": 0.1}),
                        capture_output=True, text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "train failed: --config.optimizer.weight_decy=0.1: not a key of the config"), proc.stderr
  assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def test_tensorflow_records_logged_through_absl_functions_are_dropped(tmp_path):
  """TensorFlow's checkpoint saver calls absl's logging.info itself ("Sharding callback
  duration", at every save). In a binary, which imports the console first, that record names
  absl's logging module as its file, not TensorFlow's: the filter must look past it."""
  script = (
      "import sys; sys.argv = ['binary']\n"
      "from train import console\n"
      "import tensorflow as tf\n"
      "from absl import logging\n"
      "logging.set_verbosity(logging.INFO)\n"
      f"tf.train.Checkpoint(v=tf.Variable(1.0)).save({str(tmp_path / 'ckpt')!r})\n"
      "logging.info('ours stays')\n")
  _, output = run([sys.executable, "-c", script], timeout=120)
  assert "ours stays" in output, output[-2000:]
  assert "Sharding callback" not in output, output[-2000:]
