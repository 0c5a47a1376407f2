r"""EfficientLEAF speed next to mel and exact LEAF, in one process (issue goal: fwd+grad <= 10x mel fwd).

    .venv/bin/python benchmarks/efficient_leaf.py [--batch 8 --seconds 5 --repeats 5]

Each row is compiled once (tf.function, XLA where marked), then all rows are
timed round-robin `repeats` times so load on a shared machine hits them alike;
the table gives the median milliseconds per batch and the ratio to the mel
forward pass. "fwd+grad" is a forward pass plus the gradient of a scalar loss
with respect to every trainable variable, in training mode. The "energies" rows
stop before the compression, to show where the time goes.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_frontends  # noqa: E402  (routes tf.keras before TensorFlow loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.frontend_quality import cpu_model  # noqa: E402


def forward(layer, jit=False):
  return tf.function(lambda x: layer(x), jit_compile=jit)


def forward_and_grads(layer, fn=None, jit=False):
  fn = fn or (lambda x: layer(x, training=True))

  @tf.function(jit_compile=jit)
  def step(x):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(fn(x)))
    return loss, tape.gradient(loss, layer.trainable_variables,
                               unconnected_gradients=tf.UnconnectedGradients.ZERO)

  return step


def rows():
  mel, leaf = tf_frontends.MelFilterbanks(), tf_frontends.Leaf()
  logtbn = tf_frontends.EfficientLeaf()
  pcen = tf_frontends.EfficientLeaf(compression="pcen")
  return {
      "mel fwd": forward(mel),
      "leaf fwd+grad": forward_and_grads(leaf),
      "efficientleaf (logtbn) fwd": forward(logtbn),
      "efficientleaf (logtbn) fwd+grad": forward_and_grads(logtbn),
      "efficientleaf (logtbn) fwd+grad, XLA": forward_and_grads(logtbn, jit=True),
      "efficientleaf (pcen) fwd+grad": forward_and_grads(pcen),
      "efficientleaf energies fwd": tf.function(logtbn.energies),
      "efficientleaf energies fwd+grad": forward_and_grads(logtbn, logtbn.energies),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  x = tf.constant(np.random.default_rng(0).uniform(
      -0.5, 0.5, (args.batch, int(16000 * args.seconds))).astype(np.float32))
  table = rows()
  for fn in table.values():  # trace, build and compile outside the timing
    tf.nest.map_structure(lambda t: t.numpy(), fn(x))
  times = {name: [] for name in table}
  for _ in range(args.repeats):
    for name, fn in table.items():
      start = time.perf_counter()
      tf.nest.map_structure(lambda t: t.numpy(), fn(x))
      times[name].append(time.perf_counter() - start)
  mel_ms = 1e3 * np.median(times["mel fwd"])
  print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; TF {tf.__version__}; batch {args.batch} x "
        f"{args.seconds:g} s; median of {args.repeats}, round-robin")
  print(f"{'path':<42}{'ms':>9}{'x mel fwd':>11}")
  for name, samples in times.items():
    ms = 1e3 * np.median(samples)
    print(f"{name:<42}{ms:>9.1f}{ms / mel_ms:>11.1f}")


if __name__ == "__main__":
  main()
