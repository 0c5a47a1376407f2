"""SIGTERM -> a checkpoint at the current step, then a clean exit.

A preempted VM or a cluster scheduler sends SIGTERM and, some seconds later, SIGKILL. The
handler only sets a flag: the training loop checks it between its tf.function calls (at
least every steps_per_loop steps), saves a checkpoint at the step it reached and raises
Preempted, which train.main turns into exit status 143 (128 + SIGTERM, what the scheduler
expects of a terminated job). The next start resumes from that checkpoint.
"""
import signal
import threading

EXIT_STATUS = 128 + signal.SIGTERM


class Preempted(Exception):
  """Training stopped on SIGTERM after saving a checkpoint at `step`."""

  def __init__(self, step: int, path: str):
    super().__init__(f"SIGTERM: saved checkpoint {path} at step {step}; rerun the same "
                     "command to resume")
    self.step, self.path = step, path


class SigtermFlag:
  """Context manager: `flag.requested` turns True on SIGTERM; the old handler comes back on exit.

  Signal handlers can only be installed from the main thread; elsewhere (a trainer run in a
  thread) SIGTERM keeps its previous behaviour.
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False
