"""SIGTERM and SIGINT (Ctrl-C) -> a checkpoint at the current step, then a clean exit.

A preempted VM or a cluster scheduler sends SIGTERM and, some seconds later, SIGKILL; a user
presses Ctrl-C. While training steps run, a signal only sets a flag: the training loop checks it
between its tf.function calls (at least every steps_per_loop steps), saves a checkpoint at the
step it reached and raises Preempted, which train.main turns into exit status 128 + the signal
(143 for SIGTERM, 130 for SIGINT: what schedulers and shells expect), without a traceback. The
next start resumes from that checkpoint.

Under MultiWorkerMirroredStrategy a scheduler may signal one worker only (a preempted VM, a
spot node). At every check the workers agree (`Agreement`: an all-reduce of their requests, a
collective every worker reaches at the same step), so all of them save the same step and stop;
the ones that were not signalled exit with SIGTERM's status too, and restarting every worker
resumes the run (what tf.distribute's PreemptionCheckpointHandler does, with our checkpoints
and exit statuses).

Outside the training steps (strategy setup, which can hang connecting to a TPU; reading data;
evaluation) there is nothing unsaved, so the process exits at once with a one-line message, even
while the main thread is blocked in TensorFlow's C++ code: a watcher thread reads the signal
from Python's wakeup fd (the main thread would only run a Python handler once the C++ call
returns). A second signal while a save is pending exits at once too.
"""
import contextlib
import os
import signal
import sys
import threading

import tensorflow as tf

EXIT_STATUS = 128 + signal.SIGTERM
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_status(signum: int) -> int:
  return 128 + int(signum)


class Preempted(Exception):
  """Training stopped on a signal (to this worker, or to another: `signum` None) after saving a
  checkpoint at `step`."""

  def __init__(self, step: int, path: str, signum=signal.SIGTERM):
    what = signal.Signals(signum).name if signum else "another worker was stopped"
    super().__init__(f"{what}: saved checkpoint {path} at step {step}; "
                     "rerun the same command to resume")
    self.step, self.path = step, path
    self.signum = signum or signal.SIGTERM


class Agreement:
  """Whether any worker of the strategy's cluster was asked to stop (see the module doc).

  `any(requested)` returns the same answer on every worker; with several workers it is a
  collective, so every worker calls it at the same point of the loop. One worker: `requested`.
  """

  def __init__(self, strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    jobs = resolver.cluster_spec().as_dict() if resolver is not None else {}
    workers = sum(len(jobs.get(job, ())) for job in ("chief", "worker"))
    self._any = None
    if workers > 1 and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
      @tf.function
      def any_worker(requested):
        votes = strategy.run(lambda: tf.identity(requested))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None) > 0
      self._any = any_worker

  def any(self, requested: bool) -> bool:
    if self._any is None:
      return requested
    return bool(self._any(tf.constant(1.0 if requested else 0.0)))


class StopSignals:
  """Context manager: SIGTERM / SIGINT stop the process (see the module doc).

  `requested` turns true on a signal received inside `deferred()`; elsewhere a signal ends the
  process with status 128 + signal after printing `what it was doing`. Signal handlers can only
  be installed from the main thread; elsewhere (a trainer run in a thread) the signals keep
  their previous behaviour and `requested` stays false.
  """

  def __init__(self):
    self.signum = None
    self._deferring = False
    self._previous = {}
    self._pipe = None
    self._old_wakeup_fd = -1
    self._thread = None

  @property
  def requested(self) -> bool:
    return self.signum is not None

  @contextlib.contextmanager
  def deferred(self):
    """Inside: a signal sets `requested`; the caller checks it, saves and raises Preempted
    (also after the block: a signal may arrive after its last check)."""
    self._deferring = True
    try:
      yield
    finally:
      self._deferring = False

  def _watch(self, read_fd: int) -> None:
    while True:
      data = os.read(read_fd, 64)
      for signum in data:
        if signum == 0:             # __exit__'s wake-up
          return
        if self._deferring and self.signum is None:
          self.signum = signum      # the loop saves and stops
          continue
        name = signal.Signals(signum).name
        doing = ("at a second signal, without waiting for the checkpoint"
                 if self.signum is not None else "outside the training steps: nothing unsaved")
        print(f"{name}: stopped {doing}; rerun the same command to resume", file=sys.stderr,
              flush=True)
        os._exit(exit_status(signum))

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      return self
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    self._pipe = (read_fd, write_fd)
    for signum in SIGNALS:
      # A Python handler must be installed for the wakeup fd to be written; the decision is
      # the watcher's (it runs while the main thread is blocked in C++).
      self._previous[signum] = signal.signal(signum, lambda *_: None)
    self._old_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    self._thread = threading.Thread(target=self._watch, args=(read_fd,), daemon=True,
                                    name="stop-signals")
    self._thread.start()
    return self

  def __exit__(self, *exc):
    if self._pipe is None:
      return False
    signal.set_wakeup_fd(self._old_wakeup_fd)
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    os.write(self._pipe[1], b"\0")
    self._thread.join()
    for fd in self._pipe:
      os.close(fd)
    self._pipe = None
    return False
