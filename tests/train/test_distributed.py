"""MirroredStrategy over 2 logical CPUs == one device; 2-process MultiWorkerMirroredStrategy
(and SIGTERM to one of its workers); evaluation under both == one device.

Logical devices must be configured before TensorFlow initialises its devices, and a
multi-worker strategy owns its process, so each case runs in fresh subprocesses.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import harness

REPO = harness.REPO


@pytest.mark.slow
def test_mirrored_two_logical_cpus_matches_one_device(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests", "train", "mirrored_training.py"), data_dir,
       str(tmp_path / "work")],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(re.search(r"^RESULT (.*)$", proc.stdout, re.M).group(1))
  assert result["steps"] == [4, 4]
  assert result["moved"] > 1e-3                      # training did change the weights
  assert result["diff"] < 1e-4, result               # ... the same way on both
  for a, b in zip(result["losses_1"], result["losses_2"]):
    assert abs(a - b) < 1e-5, result
  assert result["trainer_steps"] == 6


# What a worker logs when its gRPC server cannot take the port it was given in TF_CONFIG
# (another process took it between our choice and the worker's bind).
_BIND_FAILED = re.compile(r"Address already in use|Failed to add port|Could not start gRPC server")


def _unused_ports(count):
  """Ports the kernel reports free now. Another process may take one before a worker binds it:
  _run_workers retries with new ports when a worker reports that."""
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _signal_when_training(procs, logs, worker, signum=signal.SIGTERM, timeout_s=300):
  """Sends `signum` to `worker` once the chief has logged a training step before the last."""
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline and all(p.poll() is None for p in procs):
    if re.search(r"step [1-4]/6 ", logs[0].read_text()):
      procs[worker].send_signal(signum)
      return
    time.sleep(0.05)
  raise AssertionError("the workers ended or never logged a training step: " +
                       logs[0].read_text()[-2000:])


def _run_workers(tmp_path, command, attempts=3, name="run", stop_worker=None):
  """Runs `command` as the 2 workers of a MultiWorkerMirrored cluster; (procs, outputs).
  stop_worker: the index of a worker sent SIGTERM while the steps run."""
  for attempt in range(attempts):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _unused_ports(2)]}
    procs, logs = [], []
    for index in range(2):
      env = dict(os.environ, TF_CONFIG=json.dumps(
          {"cluster": cluster, "task": {"type": "worker", "index": index}}))
      # files, not pipes: a worker blocked on a full pipe would stall the other's collectives
      logs.append(tmp_path / f"{name}_worker_{index}_try{attempt}.log")
      with open(logs[-1], "w") as log:
        procs.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
    try:
      if stop_worker is not None:
        _signal_when_training(procs, logs, stop_worker)
      for proc in procs:
        proc.wait(timeout=420)
    finally:
      for proc in procs:
        if proc.poll() is None:
          proc.kill()
          proc.wait()
    outputs = [log.read_text() for log in logs]
    if not any(_BIND_FAILED.search(out) for out in outputs):
      return procs, outputs
  raise AssertionError(f"workers could not bind their ports in {attempts} attempts")


def _multi_worker_command(data_dir, workdir):
  """6 steps, one step per loop (a stop request is read after every step), one eval at the
  end; the wrapper prints each worker's parameter checksum."""
  command = harness.main_command(data_dir, workdir, {
      "num_train_steps": 6, "eval_every_epochs": 0, "steps_per_loop": 1, "log_every_steps": 1})
  command[1:3] = [os.path.join(REPO, "tests", "train", "main_with_checksum.py")]
  return command


def _checksums(outputs):
  found = [re.search(r"^param_checksum (\S+)$", out, re.M) for out in outputs]
  assert all(found), [out[-2000:] for out in outputs]
  return [float(f.group(1)) for f in found]


@pytest.fixture(scope="module")
def multi_worker_run(data_dir, tmp_path_factory):
  """An unkilled 2-worker run: (workdir, procs, outputs)."""
  tmp_path = tmp_path_factory.mktemp("multi_worker")
  workdir = str(tmp_path / "work")
  procs, outputs = _run_workers(tmp_path, _multi_worker_command(data_dir, workdir))
  return workdir, procs, outputs


@pytest.mark.slow
def test_multi_worker_two_processes_agree(multi_worker_run):
  workdir, procs, outputs = multi_worker_run
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-4000:]
  finals = [re.search(r"final step (\d+)", out) for out in outputs]
  assert all(finals), [out[-2000:] for out in outputs]
  checksums = _checksums(outputs)
  assert "CollectiveAllReduceStrategy, 2 replicas" in outputs[0]   # = MultiWorkerMirrored
  assert [int(f.group(1)) for f in finals] == [6, 6]
  assert checksums[0] == checksums[1]                             # identical weights
  # only the chief writes the run's checkpoints; the other worker's scratch is gone
  assert os.path.exists(os.path.join(workdir, "checkpoints", "ckpt-6.index"))
  assert not os.path.exists(os.path.join(workdir, "tmp_workers"))
  assert os.path.exists(os.path.join(workdir, "best", "ckpt-6.index"))
  results = json.load(open(os.path.join(workdir, "eval_results.json")))
  assert results["step"] == 6 and results["centre_crop"]["num_examples"] == 24


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_all_at_one_step_and_the_restart_ends_as_unkilled(
    data_dir, tmp_path, multi_worker_run):
  """A scheduler preempts worker 1 alone: both workers save the same step and exit 143; both
  restarted, the run ends with the weights of the unkilled run (<= 1e-6 relative)."""
  command = _multi_worker_command(data_dir, str(tmp_path / "work"))
  procs, outputs = _run_workers(tmp_path, command, name="stopped", stop_worker=1)
  assert [p.returncode for p in procs] == [143, 143], [out[-3000:] for out in outputs]
  assert "another worker was stopped: saved checkpoint" in outputs[0], outputs[0][-3000:]
  assert "SIGTERM: saved checkpoint" in outputs[1], outputs[1][-3000:]
  steps = [int(re.search(r"saved checkpoint \S+ at step (\d+)", out).group(1))
           for out in outputs]
  assert steps[0] == steps[1] and 0 < steps[0] < 6, steps
  assert "final step" not in outputs[0]

  procs, outputs = _run_workers(tmp_path, command, name="restarted")
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-4000:]
  assert re.search(rf"Resumed from \S+ckpt-{steps[0]} at step {steps[0]}", outputs[0]), \
      outputs[0][-3000:]
  unkilled = _checksums(multi_worker_run[2])[0]
  for checksum in _checksums(outputs):
    assert abs(checksum - unkilled) <= 1e-6 * abs(unkilled), (checksum, unkilled)


def _distributed_evaluation(output):
  """The RESULT of tests/train/distributed_evaluation.py, checked: the strategy's metrics and
  every clip's scores equal one device's (1e-6), each of the 23 clips counted once."""
  result = json.loads(re.search(r"^RESULT (.*)$", output, re.M).group(1))
  distributed, one_device = result["distributed"], result["one_device"]
  for name in ("centre_crop", "full_clip"):
    assert distributed[name]["num_examples"] == one_device[name]["num_examples"] == 23
    for key in ("mAP", "mAUC", "dprime"):
      assert abs(distributed[name][key] - one_device[name][key]) <= 1e-6, (name, key, result)
  for mode in ("eval", "full_clip"):
    np.testing.assert_allclose(distributed[f"sorted_scores_{mode}"],
                               one_device[f"sorted_scores_{mode}"], rtol=0, atol=1e-6)
  # the replicas' BatchNorm statistics differed (as after training) and were reconciled
  assert result["num_statistics"] > 0
  assert result["spread_before"] > 0.2 and result["spread_after"] < 1e-6
  return distributed


@pytest.mark.slow
def test_mirrored_evaluation_matches_one_device(tmp_path):
  """23 clips, global eval batch 22 (11 per replica): the last step has one clip."""
  data_dir = harness.write_dataset(str(tmp_path / "tones"), num_train=4, num_eval=23)
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests", "train", "distributed_evaluation.py"),
       "mirrored", data_dir], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  _distributed_evaluation(proc.stdout)


@pytest.mark.slow
def test_multi_worker_evaluation_matches_one_device(tmp_path):
  """Worker 0 reads the shard of 12 clips, worker 1 that of 11: the workers run out of clips
  (and windows) at different steps."""
  data_dir = harness.write_dataset(str(tmp_path / "tones"), num_train=4, num_eval=23)
  command = [sys.executable, os.path.join(REPO, "tests", "train", "distributed_evaluation.py"),
             "multi_worker", data_dir]
  procs, outputs = _run_workers(tmp_path, command)
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-4000:]
  chief, other = (_distributed_evaluation(out) for out in outputs)
  assert chief == other                                  # every worker has every score
