r"""The LEAF paper's frontend comparison at demo scale: every frontend + the demo backbone, several seeds.

  python benchmarks/frontend_quality.py --data_dir=demo_out/demo_data --output_dir=/tmp/quality \
      [--frontends=leaf,sincnet,sincnet_plus,tdfbanks,mel,efficientleaf] [--seeds=0,1,2] [--num_train_steps=600]

Each (frontend, seed) trains `train/configs/demo.py:<frontend>` (the same recipe for all) in its
own process (`python -m train.main`, so no global state is shared between runs), choosing its
best checkpoint on the validation split, then `--mode=eval` scores that checkpoint once on the
test split. The table gives mean +- std over seeds of the test split's full-clip and centre-crop
mAP / mAUC / d' and the training throughput (samples/s, mean of the logged rates after the first
loop, which includes tracing). A finished run (test results in its eval_results.json) is
reused, so an interrupted benchmark continues where it stopped. The CPU model heads the table.
"""
import argparse
import glob
import json
import os
import platform
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def samples_per_second(workdir: str) -> float:
  """Mean of the logged training rates after the first logged loop (that one includes tracing)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (only to read the events)
  rates = []
  for path in sorted(glob.glob(os.path.join(workdir, "train", "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "samples_per_second":
          rates.append((event.step, float(tf.make_ndarray(value.tensor))))
  rates = [rate for _, rate in sorted(rates)[1:]]
  return float(np.mean(rates)) if rates else float("nan")


def schedule_name(num_train_steps: int) -> str:
  return f"{num_train_steps} steps" if num_train_steps > 0 else "recipe schedule"


def train_one(frontend, seed, args) -> dict:
  schedule = schedule_name(args.num_train_steps).replace(" ", "_")
  workdir = os.path.join(args.output_dir, f"{frontend}_seed{seed}_{schedule}")
  results_path = os.path.join(workdir, "eval_results.json")
  if not os.path.exists(results_path) or "test" not in _read(results_path):
    command = [sys.executable, "-m", "train.main", f"--config=train/configs/demo.py:{frontend}",
               f"--workdir={workdir}", f"--config.dataset.data_dir={os.path.abspath(args.data_dir)}",
               f"--config.seed={seed}", "--config.eval_every_epochs=0"]   # one eval, at the end
    if args.num_train_steps > 0:
      command.append(f"--config.num_train_steps={args.num_train_steps}")
    print(f"training {frontend} seed {seed} ...", flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    # validation chose the checkpoint; the test split is scored once, here
    subprocess.run(command + ["--mode=eval"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
  results = _read(results_path)["test"]
  results["samples_per_second"] = samples_per_second(workdir)
  return results


def _read(path: str) -> dict:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _mean_std(values):
  return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data_dir", required=True, help="The demo set (python -m train.data.demo.demo_data).")
  parser.add_argument("--output_dir", required=True, help="One workdir per (frontend, seed).")
  parser.add_argument("--frontends", default=",".join(FRONTENDS))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--num_train_steps", type=int, default=-1,
                      help="Training steps of every run; <= 0: the demo recipe's own schedule "
                           "(train/configs/demo.py, the main job's).")
  args = parser.parse_args()
  frontends = [f for f in args.frontends.split(",") if f]
  unknown = sorted(set(frontends) - set(FRONTENDS))
  if unknown:
    parser.error(f"--frontends: unknown {unknown}; choose from {FRONTENDS}")
  seeds = [int(s) for s in args.seeds.split(",") if s]

  rows = []
  for frontend in frontends:
    runs = [train_one(frontend, seed, args) for seed in seeds]
    cells = [_mean_std([r[part][metric] for r in runs])
             for part in ("full_clip", "centre_crop") for metric in METRICS]
    rows.append([frontend, *cells, _mean_std([r["samples_per_second"] for r in runs])])
  print(f"\n{cpu_model()}, {os.cpu_count()} cores; seeds {seeds}; "
        f"{schedule_name(args.num_train_steps)}; test split, best checkpoint on validation; "
        "mean ± std over seeds")
  header = ["frontend"] + [f"{part} {m}" for part in ("clip", "crop") for m in METRICS]
  header.append("train samples/s")
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  for row in rows:
    print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
  main()
