r"""Samples/s on this machine's accelerator: frontends alone and the full train step, XLA on/off.

    .venv/bin/python benchmarks/accelerator.py [--frontends leaf,sincnet,efficientleaf,mel
        --batch 256 --seconds 5 --precisions float32,bfloat16,float16 --steps 5 --repeats 5]

One call prints two tables for the first GPU (else the CPU), named in the header:
  - frontend forward + parameter gradients (benchmarks/frontends.py's compile_pair), float32
    (the trainer keeps frontends float32 under every precision policy), XLA off and on;
  - the trainer's own train step (benchmarks/train_step.py's make_run: frontend + B0 by
    default, SpecAugment, AdamW) for each precision ("float32", or the mixed "bfloat16" /
    "float16" policies of config.mixed_precision), XLA (config.jit_compile) off and on.
TensorFloat-32 is off unless --tf32, so float32 rows are float32 arithmetic (parity numbers;
TF32 matmuls/convs keep 10 mantissa bits). The seed trained LEAF + B0 at ~2048 samples/s on
one TPU v3-8. Everything is compiled first, then timed round-robin, median of `repeats`.
CI runs this on CPU with a tiny batch, short crops and a small backbone
(tests/benchmarks/test_accelerator.py), so it cannot rot.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train import console  # noqa: E402,F401  (first: TensorFlow's C++ log level)
import legacy_keras  # noqa: E402,F401  (before TensorFlow: tf.keras -> tf_keras)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_frontends  # noqa: E402
from benchmarks import frontends as frontends_benchmark  # noqa: E402
from benchmarks import train_step as train_step_benchmark  # noqa: E402

PRECISIONS = {"float32": "", "bfloat16": "bfloat16", "float16": "float16"}


def device_description() -> str:
  """'GPU: <name> (compute capability x.y)' of the first GPU, else 'CPU: <model>'."""
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")
    suffix = f" (compute capability {capability[0]}.{capability[1]})" if capability else ""
    return f"GPU: {details.get('device_name', gpus[0].name)}{suffix}, {len(gpus)} visible"
  return f"CPU: {frontends_benchmark.cpu_description()}"


def _overrides(text: str) -> dict:
  """'key=value,key=value' -> {flattened config key: python value}."""
  pairs = {}
  for item in filter(None, text.split(",")):
    key, sep, value = item.partition("=")
    if not sep:
      raise SystemExit(f"--overrides: {item!r} is not key=value")
    try:
      pairs[key] = int(value)
    except ValueError:
      try:
        pairs[key] = float(value)
      except ValueError:
        pairs[key] = value
  return pairs


def _parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frontends", default="leaf,sincnet,efficientleaf,mel",
                      help="comma-separated tf_frontends names")
  parser.add_argument("--backbone", default="efficientnet", help="efficientnet (B0) | resnet | ...")
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--seconds", type=float, default=5.0, help="crop length")
  parser.add_argument("--precisions", default=",".join(PRECISIONS),
                      help=f"comma-separated, of {list(PRECISIONS)}")
  parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--tf32", action="store_true", help="allow TensorFloat-32 (off: parity)")
  parser.add_argument("--overrides", default="",
                      help="more train-step config fields, key=value,... (CI: a tiny backbone)")
  args = parser.parse_args(argv)
  args.frontends = args.frontends.split(",")
  args.precisions = args.precisions.split(",")
  unknown = ([name for name in args.frontends if name not in tf_frontends.FRONTENDS] +
             [name for name in args.precisions if name not in PRECISIONS])
  if unknown:
    parser.error(f"unknown frontend(s) / precision(s): {', '.join(unknown)}")
  args.overrides = _overrides(args.overrides)
  return args


def _candidates(args):
  """{row key: (function of its input, input)}: every frontend and train-step run."""
  samples = int(16000 * args.seconds)
  waveform = tf.constant(np.random.default_rng(0).uniform(
      -0.5, 0.5, (args.batch, samples)).astype(np.float32))
  fns, inputs = {}, {}
  for name in args.frontends:
    layer = tf_frontends.get(name)
    layer(waveform[:1])     # build
    for jit in (False, True):
      _, forward_backward = frontends_benchmark.compile_pair(
          layer, lambda layer=layer: layer.trainable_variables, jit, watch_input=False)
      key = ("frontend fwd+grad", name, "float32", jit)
      fns[key], inputs[key] = forward_backward, waveform
  for name in args.frontends:
    for precision in args.precisions:
      for jit in (False, True):
        loop, iterator, steps = train_step_benchmark.make_run(
            name, args.backbone, args.seconds, args.batch, args.steps, jit_compile=jit,
            mixed_precision=PRECISIONS[precision], overrides=args.overrides)
        key = (f"train step + {args.backbone}", name, precision, jit)
        fns[key] = lambda _, loop=loop, iterator=iterator, steps=steps: loop(iterator, steps)
        inputs[key] = None
  return fns, inputs


def main(argv=None):
  args = _parse(argv)
  tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
  tf.config.experimental.enable_tensor_float_32_execution(args.tf32)
  try:
    fns, inputs = _candidates(args)
    seconds = frontends_benchmark.time_round_robin(fns, inputs, args.repeats)
  finally:
    tf.config.experimental.enable_tensor_float_32_execution(tf32)
  print(f"{device_description()}; TF {tf.__version__}; TF32 {'on' if args.tf32 else 'off'}")
  print(f"batch {args.batch} x {args.seconds:g} s at 16 kHz; median of {args.repeats}; train "
        f"step: {args.steps} steps per timing, {train_step_benchmark.NUM_CLASSES} classes"
        + (f", overrides {args.overrides}" if args.overrides else ""))
  print(f"{'part':28s} {'frontend':14s} {'precision':9s} {'XLA':3s} {'samples/s':>10s}")
  for (part, name, precision, jit), value in seconds.items():
    steps = args.steps if part.startswith("train") else 1
    print(f"{part:28s} {name:14s} {precision:9s} {'on' if jit else 'off':3s} "
          f"{args.batch * steps / value:10.1f}")


if __name__ == "__main__":
  main()
