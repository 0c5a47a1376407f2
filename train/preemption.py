"""SIGTERM and SIGINT (Ctrl-C) -> a checkpoint at the current step, then a clean exit.

A preempted VM or a cluster scheduler sends SIGTERM and, some seconds later, SIGKILL; a user
presses Ctrl-C. While training steps run, a signal only sets a flag: the training loop checks it
between its tf.function calls (at least every steps_per_loop steps), saves a checkpoint at the
step it reached and raises Preempted, which train.main turns into exit status 128 + the signal
(143 for SIGTERM, 130 for SIGINT: what schedulers and shells expect), without a traceback. The
next start resumes from that checkpoint.

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

EXIT_STATUS = 128 + signal.SIGTERM
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_status(signum: int) -> int:
  return 128 + int(signum)


class Preempted(Exception):
  """Training stopped on a signal after saving a checkpoint at `step`."""

  def __init__(self, step: int, path: str, signum: int = signal.SIGTERM):
    super().__init__(f"{signal.Signals(signum).name}: saved checkpoint {path} at step {step}; "
                     "rerun the same command to resume")
    self.step, self.path, self.signum = step, path, signum


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
