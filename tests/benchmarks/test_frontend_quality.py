"""The comparison's tuning protocol: every choice on validation, the same budget per frontend."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import frontend_quality  # noqa: E402  pylint: disable=wrong-import-position


def _fake_runs(validation_maps):
  """A `run` that records its calls and returns validation mAPs from a table."""
  calls = []

  def run(frontend, seed, lr_factor, multiplier, args, score_test):
    del args
    calls.append((frontend, seed, lr_factor, multiplier, score_test))
    return {"full_clip": {"mAP": validation_maps[(lr_factor, multiplier)]}}
  return run, calls


ARGS = frontend_quality.parse_args(["--data_dir=d", "--output_dir=o", "--seeds=3,4"])


def test_rate_then_multiplier_chosen_on_validation_without_reading_test():
  maps = {(0.5, 1.0): 0.70, (1.0, 1.0): 0.72, (2.0, 1.0): 0.75, (2.0, 0.1): 0.78}
  run, calls = _fake_runs(maps)
  lr_factor, multiplier, trials = frontend_quality.tune("leaf", ARGS, run=run)
  assert (lr_factor, multiplier) == (2.0, 0.1)
  assert [c[2:4] for c in calls] == [(0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (2.0, 0.1)]
  assert all(seed == 3 and not score_test for _, seed, _, _, score_test in calls)
  assert [t[2] for t in trials] == [0.70, 0.72, 0.75, 0.78]


def test_a_worse_multiplier_keeps_1_and_every_frontend_gets_the_same_budget():
  maps = {(0.5, 1.0): 0.80, (1.0, 1.0): 0.72, (2.0, 1.0): 0.75, (0.5, 0.1): 0.60}
  budgets = {}
  for frontend in ("leaf", "sincnet", "efficientleaf"):
    run, calls = _fake_runs(maps)
    assert frontend_quality.tune(frontend, ARGS, run=run)[:2] == (0.5, 1.0)
    budgets[frontend] = len(calls)
  assert set(budgets.values()) == {4}


def test_mel_has_no_weights_so_only_its_rate_is_tuned():
  run, calls = _fake_runs({(0.5, 1.0): 0.5, (1.0, 1.0): 0.6, (2.0, 1.0): 0.4})
  assert frontend_quality.tune("mel", ARGS, run=run)[:2] == (1.0, 1.0)
  assert len(calls) == 3


@pytest.mark.parametrize("argv, message", [
    (["--frontends=leaf,spectrogram"], "unknown"),
    (["--lr_factors=1,two"], "comma-separated"),
    (["--frontend_lr_multipliers=0.1"], "1 among"),
])
def test_bad_arguments_are_named(argv, message, capsys):
  with pytest.raises(SystemExit):
    frontend_quality.parse_args(["--data_dir=d", "--output_dir=o", *argv])
  assert message in capsys.readouterr().err


def test_the_rate_is_the_demo_recipes():
  from train.configs import demo  # pylint: disable=import-outside-toplevel
  assert frontend_quality.base_learning_rate("sincnet") == \
      demo.get_config("sincnet").optimizer.base_learning_rate > 0
