r"""The LEAF paper's frontend comparison at demo scale, every frontend tuned the same way.

  python benchmarks/frontend_quality.py --data_dir=demo_out/demo_data --output_dir=/tmp/quality \
      [--frontends=leaf,sincnet,sincnet_plus,tdfbanks,mel,efficientleaf] [--seeds=0,1,2] \
      [--lr_factors=0.5,1,2] [--frontend_lr_multipliers=1,0.1] [--num_train_steps=600]

The protocol, the same budget for every frontend (len(lr_factors) + len(multipliers) - 1 tuning
runs, then the other seeds):
  1. the peak learning rate: `train/configs/demo.py:<frontend>` with base_learning_rate x each
     of --lr_factors, seed 0; the factor with the best validation full-clip mAP is kept;
  2. the frontend's learning-rate multiplier (optimizer.frontend_lr_multiplier): each of
     --frontend_lr_multipliers at the kept rate, seed 0; the best on validation is kept
     (mel has no weights: its multiplier stays 1);
  3. the kept settings with every seed of --seeds (seed 0's run is the tuning run itself); each
     run chooses its best checkpoint on validation and its test split is scored once
     (`--mode=eval`), after all choices were made.
Nothing in 1-2 reads the test split. Each run is its own process (`python -m train.main`, so no
global state is shared); a finished run (its eval_results.json) is reused, so an interrupted
benchmark continues where it stopped. The table gives, per frontend, the chosen settings and
mean +- std over seeds of the test split's full-clip and centre-crop mAP / mAUC / d', and the
training throughput (samples/s, mean of the logged rates after the first loop, which includes
tracing). The CPU model heads the table.
"""
import argparse
import glob
import os
import platform
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from train.workdir import Workdir  # noqa: E402  pylint: disable=wrong-import-position
FRONTENDS = ("leaf", "sincnet", "sincnet_plus", "tdfbanks", "mel", "efficientleaf")
METRICS = ("mAP", "mAUC", "dprime")


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


def samples_per_second(workdir) -> float:
  """Mean of the logged training rates after the first logged loop (that one includes tracing)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (only to read the events)
  rates = []
  for path in sorted(glob.glob(os.path.join(workdir.logs_dir("train"), "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "samples_per_second":
          rates.append((event.step, float(tf.make_ndarray(value.tensor))))
  rates = [rate for _, rate in sorted(rates)[1:]]
  return float(np.mean(rates)) if rates else float("nan")


def schedule_name(num_train_steps: int) -> str:
  return f"{num_train_steps} steps" if num_train_steps > 0 else "recipe schedule"


def base_learning_rate(frontend: str) -> float:
  """The demo recipe's peak rate for `frontend` (configs are data: no TensorFlow imported)."""
  from train.configs import demo  # pylint: disable=import-outside-toplevel
  return demo.get_config(frontend).optimizer.base_learning_rate


def run_one(frontend, seed, lr_factor, frontend_lr_multiplier, args, score_test) -> dict:
  """eval_results.json of one run (trained if not yet); its test split scored if score_test."""
  schedule = schedule_name(args.num_train_steps).replace(" ", "_")
  workdir = Workdir(os.path.join(args.output_dir, f"{frontend}_lr{lr_factor:g}_frontend"
                                                  f"{frontend_lr_multiplier:g}_seed{seed}_{schedule}"))
  command = [sys.executable, "-m", "train.main", f"--config=train/configs/demo.py:{frontend}",
             f"--workdir={workdir}", f"--config.dataset.data_dir={os.path.abspath(args.data_dir)}",
             f"--config.seed={seed}", "--config.eval_every_epochs=0",   # one eval, at the end
             f"--config.optimizer.base_learning_rate={base_learning_rate(frontend) * lr_factor!r}",
             f"--config.optimizer.frontend_lr_multiplier={frontend_lr_multiplier!r}"]
  if args.num_train_steps > 0:
    command.append(f"--config.num_train_steps={args.num_train_steps}")
  if not workdir.read_eval_results():
    print(f"training {frontend} seed {seed} lr x{lr_factor:g} frontend x{frontend_lr_multiplier:g}"
          " ...", flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
  if score_test and "test" not in workdir.read_eval_results():
    # validation chose the checkpoint; the test split is scored once, here
    subprocess.run(command + ["--mode=eval"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
  results = workdir.read_eval_results()
  results["samples_per_second"] = samples_per_second(workdir)
  return results


def validation_map(results: dict) -> float:
  return results["full_clip"]["mAP"]


def tune(frontend, args, run=run_one) -> tuple:
  """Steps 1-2 of the protocol (module doc): (lr_factor, frontend_lr_multiplier, trials), trials
  [(lr_factor, multiplier, validation full-clip mAP)] in the order they ran."""
  seed = args.seeds[0]
  trials = [(f, 1.0, validation_map(run(frontend, seed, f, 1.0, args, False)))
            for f in args.lr_factors]
  lr_factor = max(trials, key=lambda t: t[2])[0]
  if frontend != "mel":       # no weights: the multiplier changes nothing
    trials += [(lr_factor, m, validation_map(run(frontend, seed, lr_factor, m, args, False)))
               for m in args.frontend_lr_multipliers if m != 1.0]
  best = max((t for t in trials if t[0] == lr_factor), key=lambda t: t[2])
  return lr_factor, best[1], trials


def _mean_std(values):
  return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data_dir", required=True, help="The demo set (python -m train.data.demo.demo_data).")
  parser.add_argument("--output_dir", required=True, help="One workdir per run.")
  parser.add_argument("--frontends", default=",".join(FRONTENDS))
  parser.add_argument("--seeds", default="0,1,2", help="The first one tunes.")
  parser.add_argument("--lr_factors", default="0.5,1,2",
                      help="Peak learning rates tried, as factors of the demo recipe's.")
  parser.add_argument("--frontend_lr_multipliers", default="1,0.1",
                      help="Frontend learning-rate multipliers tried at the chosen rate.")
  parser.add_argument("--num_train_steps", type=int, default=-1,
                      help="Training steps of every run; <= 0: the demo recipe's own schedule "
                           "(train/configs/demo.py, the main job's).")
  args = parser.parse_args(argv)
  frontends = [f for f in args.frontends.split(",") if f]
  unknown = sorted(set(frontends) - set(FRONTENDS))
  if unknown:
    parser.error(f"--frontends: unknown {unknown}; choose from {FRONTENDS}")
  args.frontends = frontends
  try:
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.lr_factors = [float(f) for f in args.lr_factors.split(",") if f]
    args.frontend_lr_multipliers = [float(m) for m in args.frontend_lr_multipliers.split(",") if m]
  except ValueError as e:
    parser.error(f"--seeds, --lr_factors and --frontend_lr_multipliers are comma-separated "
                 f"numbers: {e}")
  if not (args.seeds and args.lr_factors and 1.0 in args.frontend_lr_multipliers):
    parser.error("need at least one seed and one --lr_factors value, and 1 among "
                 "--frontend_lr_multipliers (the rate is tuned at multiplier 1)")
  return args


def main():
  args = parse_args()
  rows = []
  for frontend in args.frontends:
    lr_factor, multiplier, trials = tune(frontend, args)
    for f, m, value in trials:
      print(f"{frontend}: lr x{f:g}, frontend x{m:g}: validation full-clip mAP {value:.4f}")
    runs = [run_one(frontend, seed, lr_factor, multiplier, args, True) for seed in args.seeds]
    cells = [_mean_std([r["test"][part][metric] for r in runs])
             for part in ("full_clip", "centre_crop") for metric in METRICS]
    rows.append([frontend, f"x{lr_factor:g} / x{multiplier:g}", *cells,
                 _mean_std([r["samples_per_second"] for r in runs])])
  print(f"\n{cpu_model()}, {os.cpu_count()} cores; seeds {args.seeds}; "
        f"{schedule_name(args.num_train_steps)}; lr factors {args.lr_factors}, frontend "
        f"multipliers {args.frontend_lr_multipliers} chosen on validation (seed "
        f"{args.seeds[0]}); test split, best checkpoint on validation; mean ± std over seeds")
  header = ["frontend", "lr / frontend lr"]
  header += [f"{part} {m}" for part in ("clip", "crop") for m in METRICS]
  header.append("train samples/s")
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  for row in rows:
    print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
  main()
