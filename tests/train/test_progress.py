"""The progress line: count, percentage, rate and ETA; a log gets a line per quarter."""
import io
import re

from train import progress


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_a_log_gets_a_line_per_quarter_and_a_final_line():
  stream = io.StringIO()
  bar = progress.Progress("mixing", total=8, unit="clips", stream=stream)
  for _ in range(8):
    bar.update()
  bar.close()
  lines = stream.getvalue().splitlines()
  assert [re.match(r"mixing: (\d+)/8 clips", line).group(1) for line in lines] == \
      ["2", "4", "6", "8"]
  assert "(25%)" in lines[0] and "ETA" in lines[0] and "clips/s" in lines[0]
  assert "ETA" not in lines[-1] and re.search(r"\d+:\d\d$", lines[-1])


def test_a_terminal_redraws_one_line(monkeypatch):
  stream = _Terminal()
  monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.0)
  bar = progress.Progress("training", total=3, unit="steps", stream=stream)
  for _ in range(3):
    bar.update()
  bar.close()
  text = stream.getvalue()
  assert text.count("\n") == 1 and text.count("\r") == 4
  assert text.endswith("training: 3/3 steps, " + text.split("steps, ")[-1])


def test_a_big_update_logs_each_passed_quarter_once():
  stream = io.StringIO()
  bar = progress.Progress("x", total=100, stream=stream)
  bar.update(80)
  bar.update(10)
  assert len(stream.getvalue().splitlines()) == 3
