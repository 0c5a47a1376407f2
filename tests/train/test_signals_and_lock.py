"""Issue 25: SIGTERM / SIGINT outside the training steps, and the workdir lock across processes
(a live holder is named, a SIGKILLed one's lock is taken over). Each test failed on ec0ace3."""
import os
import signal
import subprocess
import sys
import textwrap

from absl import logging as absl_logging
import pytest

from tests.harness import REPO, main_command, wait_for_line
from train import preemption
from train import folder_lock
from train import workdir as workdir_lib

# Blocks in a C call (time.sleep) inside preemption.StopSignals, outside / inside deferred().
_BLOCKED = textwrap.dedent("""
    import sys, time
    from train import preemption
    with preemption.StopSignals() as stop:
      if sys.argv[1] == "deferred":
        with stop.deferred():
          print("ready", flush=True)
          while not stop.requested:
            time.sleep(0.01)
        print("requested", stop.signum, flush=True)
      else:
        print("ready", flush=True)
        time.sleep(120)
""")


def _start(args, **kwargs):
  return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kwargs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_outside_the_training_steps_exits_at_once_with_a_message(signum):
  """Before: SIGTERM only set a flag nobody read until the loop; Ctrl-C printed a traceback."""
  proc = _start([sys.executable, "-c", _BLOCKED, "outside"])
  wait_for_line(proc, "ready", timeout_s=30)
  proc.send_signal(signum)
  output = proc.communicate(timeout=10)[0]
  assert proc.returncode == 128 + signum, output
  name = signal.Signals(signum).name
  assert f"{name}: stopped outside the training steps" in output
  assert "Traceback" not in output and "KeyboardInterrupt" not in output


def test_a_signal_during_training_steps_is_a_request_the_loop_reads():
  proc = _start([sys.executable, "-c", _BLOCKED, "deferred"])
  wait_for_line(proc, "ready", timeout_s=30)
  proc.send_signal(signal.SIGINT)
  output = proc.communicate(timeout=10)[0]
  assert proc.returncode == 0 and f"requested {int(signal.SIGINT)}" in output, output


def test_sigterm_while_connecting_to_a_tpu_exits_promptly(data_dir, tmp_path):
  """Before: --tpu=grpc://127.0.0.1:1 hung over 150 s, SIGTERM did nothing, no message."""
  command = main_command(data_dir, tmp_path / "run", mode="train") + [
      "--tpu=grpc://127.0.0.1:1"]
  proc = _start(command)
  wait_for_line(proc, "Connecting to TPU", timeout_s=120)
  proc.send_signal(signal.SIGTERM)
  output = proc.communicate(timeout=20)[0]
  assert proc.returncode == preemption.EXIT_STATUS, output[-3000:]
  assert "SIGTERM: stopped outside the training steps" in output
  assert "Traceback" not in output


_HOLDER = textwrap.dedent("""
    import sys, time
    from train import workdir
    with workdir.Workdir(sys.argv[1]).lock("the holder"):
      print("held", flush=True)
      time.sleep(120)
""")


def test_the_lock_names_a_live_holder_and_is_taken_over_after_a_sigkill(tmp_path, caplog):
  workdir = str(tmp_path / "run")
  proc = _start([sys.executable, "-c", _HOLDER, workdir])
  wait_for_line(proc, "held", timeout_s=120)
  with pytest.raises(workdir_lib.RunError) as error:
    with folder_lock.lock(workdir, "a second trainer"):
      pass
  assert f"in use by pid {proc.pid} on host " in str(error.value)
  assert "the holder started " in str(error.value)
  assert folder_lock.lock_holder(workdir)["pid"] == proc.pid     # what export reports
  proc.kill()
  proc.communicate()
  assert folder_lock.lock_holder(workdir) is None                 # the kernel released it
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    with caplog.at_level("WARNING"):
      with folder_lock.lock(workdir, "a second trainer"):
        assert folder_lock.lock_holder(workdir)["pid"] == os.getpid()
  finally:
    absl_logging.set_verbosity(verbosity)
  assert f"Took over the lock of {workdir}: pid {proc.pid}" in caplog.text
  assert os.listdir(workdir) == []
