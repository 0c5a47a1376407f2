r"""Training throughput (samples/s) of frontend + backbone (EfficientNet-B0 by default), side by side.

    .venv/bin/python benchmarks/train_step.py [--frontends mel,leaf,efficientleaf]
        [--crop_seconds 1,5 --batch 16 --steps 5 --repeats 5 --backbone efficientnet]

The step is the trainer's own (train.train_loop.make_train_loop: forward with
SpecAugment and dropout, sigmoid BCE, gradients, AdamW with the warm-up + cosine
schedule) on the demo config (train/configs/demo.py: 9 classes, no stochastic depth) with
the frontend, the backbone (`config.model.backbone`) and the crop length changed. Input is
synthetic (noise, random labels), already in memory, so the input pipeline is
not measured (benchmarks/input_pipeline.py does that). All runs are compiled
first, then timed round-robin `repeats` times (`steps` steps per timing), so load
on a shared machine hits them alike; the table gives median samples/s and the
ratio to mel + the same backbone at the same crop length.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train import console  # noqa: E402,F401  (first: TensorFlow's C++ log level)
import legacy_keras  # noqa: E402,F401  (before TensorFlow: tf.keras -> tf_keras)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_frontends  # noqa: E402
from benchmarks import frontends as frontends_benchmark  # noqa: E402
from train import models  # noqa: E402
from train import optimizer as optimizer_lib  # noqa: E402
from train import train_loop  # noqa: E402
from train.configs import demo  # noqa: E402

NUM_CLASSES = 9


def make_run(frontend: str, backbone: str, crop_seconds: float, batch: int, steps: int,
             jit_compile: bool = False, mixed_precision: str = "", overrides=None):
  """(train_loop, iterator, steps tensor) for one frontend at one crop length.

  jit_compile, mixed_precision: the config fields of those names; overrides: more
  {flattened config key: value} (e.g. a smaller backbone for a quick run)."""
  config = demo.get_config(frontend)
  config.model.backbone = backbone
  config.dataset.crop_seconds = crop_seconds
  config.batch_size = batch
  config.model.num_classes = NUM_CLASSES
  config.jit_compile = jit_compile
  config.mixed_precision = mixed_precision
  config.update_from_flattened_dict(dict(overrides or {}))
  strategy = tf.distribute.get_strategy()
  model = models.build_model(config)
  optimizer, _ = optimizer_lib.create_optimizer(config, model, steps_per_epoch=100, total_steps=1000)
  optimizer.build(model.trainable_variables)     # as the trainer: no variable made in a trace
  rng = np.random.default_rng(0)
  audio = rng.uniform(-0.5, 0.5, (batch, int(crop_seconds * 16000))).astype(np.float32)
  labels = (rng.random((batch, NUM_CLASSES)) < 0.3).astype(np.float32)
  dataset = tf.data.Dataset.from_tensors({"audio": audio, "labels": labels}).repeat()
  iterator = iter(strategy.experimental_distribute_dataset(dataset))
  step = tf.Variable(0, dtype=tf.int64)
  loop = train_loop.make_train_loop(model, optimizer, strategy, step, config)
  return loop, iterator, tf.constant(steps)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frontends", default="mel,leaf,efficientleaf",
                      help="comma-separated tf_frontends names (unknown ones are skipped, named)")
  parser.add_argument("--crop_seconds", default="1,5", help="comma-separated crop lengths")
  parser.add_argument("--backbone", default="efficientnet", help="efficientnet (B0) | resnet | mobilenet")
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  names = args.frontends.split(",")
  missing = [name for name in names if name not in tf_frontends.FRONTENDS]
  names = [name for name in names if name in tf_frontends.FRONTENDS]
  crops = [float(value) for value in args.crop_seconds.split(",")]

  runs = {(name, crop): make_run(name, args.backbone, crop, args.batch, args.steps)
          for crop in crops for name in names}
  for loop, iterator, steps in runs.values():   # trace, compile and warm up
    float(loop(iterator, steps))
  times = {key: [] for key in runs}
  for _ in range(args.repeats):
    for key, (loop, iterator, steps) in runs.items():
      start = time.perf_counter()
      float(loop(iterator, steps))
      times[key].append(time.perf_counter() - start)
  rate = {key: args.batch * args.steps / float(np.median(value)) for key, value in times.items()}

  print(f"CPU: {frontends_benchmark.cpu_description()}; "
        f"{frontends_benchmark.onednn_description()}; TF {tf.__version__}")
  backbone = dict(demo.get_config().model[args.backbone])       # its arguments, for the header
  print(f"frontend + {args.backbone} {backbone} training step (demo config, {NUM_CLASSES} "
        f"classes), batch "
        f"{args.batch}, median of {args.repeats} x {args.steps} steps")
  if missing:
    print(f"not in tf_frontends.FRONTENDS, skipped: {', '.join(missing)}")
  print(f"{'frontend':14s} {'crop s':>7s} {'samples/s':>10s} {'x mel':>11s}")
  for name, crop in runs:
    mel = rate.get(("mel", crop))
    ratio = f"{rate[(name, crop)] / mel:11.2f}" if mel else f"{'-':>11s}"
    print(f"{name:14s} {crop:7g} {rate[(name, crop)]:10.1f} {ratio}")


if __name__ == "__main__":
  main()
