"""A progress line for the binaries' long stages: count, rate and time left.

    bar = progress.Progress("mixing clips", total=5280, unit="clips")
    for ...:
      bar.update()          # or bar.update(n)
    bar.close()             # the final line: count, rate, elapsed

On a terminal the line is redrawn in place (at most every REDRAW_SECONDS), so a stage takes
one line of the console; elsewhere (a log file, CI) a line is written at each quarter of the
total, so a log shows the stage moving without flooding. ETA = remaining / rate so far.
Writes to stderr, like absl's logging, so stdout stays for results.
"""
import sys
import time

REDRAW_SECONDS = 0.5
LOG_FRACTIONS = (0.25, 0.5, 0.75)


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
  """Progress of one stage of `total` items (see the module doc)."""

  def __init__(self, label: str, total: int, unit: str = "items", stream=None):
    self.label = label
    self.total = max(int(total), 1)
    self.unit = unit
    self.stream = stream or sys.stderr
    self.count = 0
    self._start = time.monotonic()
    self._last_draw = 0.0
    self._logged = 0
    self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())

  def _line(self) -> str:
    elapsed = time.monotonic() - self._start
    rate = self.count / elapsed if elapsed > 0 else 0.0
    if self.count >= self.total:
      return (f"{self.label}: {self.count}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, "
              f"{_duration(elapsed)}")
    left = (self.total - self.count) / rate if rate > 0 else float("nan")
    eta = _duration(left) if rate > 0 else "?"
    return (f"{self.label}: {self.count}/{self.total} {self.unit} "
            f"({100 * self.count / self.total:.0f}%), {rate:.1f} {self.unit}/s, ETA {eta}")

  def update(self, n: int = 1) -> None:
    self.count += n
    now = time.monotonic()
    if self._interactive:
      if now - self._last_draw >= REDRAW_SECONDS:
        self._last_draw = now
        self.stream.write("\r" + self._line() + "\033[K")
        self.stream.flush()
      return
    while (self._logged < len(LOG_FRACTIONS)
           and self.count >= LOG_FRACTIONS[self._logged] * self.total and self.count < self.total):
      self._logged += 1
      self.stream.write(self._line() + "\n")
      self.stream.flush()

  def close(self) -> None:
    """The stage's last line (count, rate, elapsed)."""
    self.stream.write(("\r" if self._interactive else "") + self._line()
                      + ("\033[K\n" if self._interactive else "\n"))
    self.stream.flush()
