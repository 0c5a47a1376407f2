r"""Frontend throughput: forward and forward+backward clips/s, side by side.

    .venv/bin/python benchmarks/frontends.py [--batch 8 --seconds 5 --repeats 5]

Every candidate is compiled once (tf.function), then the candidates are timed
round-robin, `repeats` times each, so load on a shared machine hits them alike;
the table gives the median time per batch, clips/s and the ratio to the
MelFilterbanks forward pass. "fwd+bwd" is one forward pass plus the gradient of
a scalar loss with respect to every trainable variable (mel has none, so its
fwd+bwd equals its forward pass). It also prints the largest difference between
LEAF's default path and its straightforward path (sequential EMA scan),
relative to the largest output.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import legacy_keras  # noqa: E402,F401  (an entry point: tf.keras -> tf_keras before TF loads)
import tf_frontends  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def candidates():
  return {
      "mel": tf_frontends.MelFilterbanks(),
      "leaf": tf_frontends.Leaf(),
      "leaf (straightforward: EMA scan)": tf_frontends.Leaf(ema_implementation="scan"),
      "sincnet": tf_frontends.SincNet(),
      "sincnet_plus": tf_frontends.SincNetPlus(),
      "tdfbanks": tf_frontends.TimeDomainFilterbanks(),
  }


def compile_pair(frontend, jit):
  @tf.function(jit_compile=jit)
  def forward(x):
    return frontend(x)

  @tf.function(jit_compile=jit)
  def forward_backward(x):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(frontend(x))
    grads = tape.gradient(loss, frontend.trainable_variables)
    return loss, grads

  return forward, forward_backward


def run_once(fn, x):
  start = time.perf_counter()
  tf.nest.map_structure(lambda t: t.numpy(), fn(x))
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--jit", action="store_true", help="XLA-compile the steps")
  args = parser.parse_args()

  x = tf.constant(
      np.random.default_rng(0).standard_normal(
          (args.batch, int(16000 * args.seconds))).astype(np.float32) * 0.1)
  frontends = candidates()
  fns = {}
  for name, frontend in frontends.items():
    forward, forward_backward = compile_pair(frontend, args.jit)
    fns[(name, "fwd")] = forward
    fns[(name, "fwd+bwd")] = forward_backward
  for fn in fns.values():  # trace and warm up
    run_once(fn, x)
  times = {key: [] for key in fns}
  for _ in range(args.repeats):
    for key, fn in fns.items():
      times[key].append(run_once(fn, x))
  median = {key: float(np.median(value)) for key, value in times.items()}
  mel = median[("mel", "fwd")]

  print(f"batch {args.batch} x {args.seconds:g} s at 16 kHz, median of "
        f"{args.repeats}, jit={args.jit}, {os.cpu_count()} CPUs")
  print(f"{'frontend':34s} {'fwd ms':>8s} {'clips/s':>8s} {'x mel':>7s} "
        f"{'fwd+bwd ms':>11s} {'clips/s':>8s} {'x mel':>7s}")
  for name in frontends:
    fwd, both = median[(name, "fwd")], median[(name, "fwd+bwd")]
    print(f"{name:34s} {fwd * 1e3:8.1f} {args.batch / fwd:8.1f} {fwd / mel:7.1f} "
          f"{both * 1e3:11.1f} {args.batch / both:8.1f} {both / mel:7.1f}")

  fast, straightforward = tf_frontends.Leaf(), tf_frontends.Leaf(
      ema_implementation="scan")
  a, b = fast(x).numpy(), straightforward(x).numpy()
  print(f"leaf default vs straightforward: max |diff| / max |out| = "
        f"{np.abs(a - b).max() / np.abs(b).max():.2e}")


if __name__ == "__main__":
  main()
