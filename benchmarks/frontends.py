r"""Frontend speed, ours next to the straightforward path, per op and per frontend.

    .venv/bin/python benchmarks/frontends.py [--batch 8 --seconds 5 --repeats 5 --jit]

"Straightforward" is what google-research/leaf-audio does, with TensorFlow's own
gradients: plain tf.nn.conv1d, the squared modulus by strided slices, strided
depthwise-convolution pooling, the PCEN smoother as a sequential tf.scan.
Every candidate is compiled once (tf.function), then all are timed round-robin,
`repeats` times each, so load on a shared machine hits them alike. Times are
medians per batch; "fwd+grad" is a forward pass plus the gradient of a scalar
loss with respect to every trainable variable (and, for the per-op rows, to the
op's input, which the layer before it needs). The header names the CPU and
whether TensorFlow's oneDNN kernels are on; the last lines give how far each of
our paths is from its straightforward twin (relative to the largest value).
"""
import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import legacy_keras  # noqa: E402,F401  (an entry point: tf.keras -> tf_keras before TF loads)
import tf_frontends  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_frontends import compression  # noqa: E402
from tf_frontends import frontends  # noqa: E402
from tf_frontends import pooling  # noqa: E402


def cpu_description():
  """'model name (N CPUs, AVX-512, AMX)' from /proc/cpuinfo where there is one."""
  model, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo") as cpuinfo:
      for line in cpuinfo:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          model = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
  except OSError:
    pass
  extras = [name for flag, name in (("avx512f", "AVX-512"), ("amx_tile", "AMX"))
            if flag in flags]
  return f"{model} ({', '.join([f'{os.cpu_count()} CPUs'] + extras)})"


def onednn_description():
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  built = _pywrap_util_port.IsMklEnabled()
  setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
  return f"oneDNN built in: {built}, TF_ENABLE_ONEDNN_OPTS={setting}"


def scan_pcen(pcen):
  """A PCEN like `pcen` whose smoother is the sequential scan (leaf-audio's form)."""
  return compression.PCEN(**{**pcen.get_config(), "name": "pcen_scan",
                             "ema_implementation": "scan"})


def straightforward_leaf(leaf):
  """leaf-audio's LEAF on `leaf`'s weights, every op with TensorFlow's own gradient."""
  pcen = scan_pcen(leaf._compression)
  pcen.build([None, None, leaf.n_filters])
  pcen.set_weights(leaf._compression.get_weights())

  def call(waveform):
    filtered = tf.nn.conv1d(waveform[:, :, tf.newaxis], leaf._filterbank.conv_kernel(),
                            stride=1, padding="SAME")
    energies = straightforward_modulus(filtered)
    pooled = straightforward_pool(energies, leaf._pooling.windows(), leaf.hop)
    return pcen(tf.maximum(pooled, frontends.ENERGY_FLOOR))

  return call, leaf.trainable_variables


def straightforward_modulus(inputs):
  return tf.square(inputs[:, :, 0::2]) + tf.square(inputs[:, :, 1::2])


def straightforward_pool(inputs, windows, strides):
  return tf.nn.depthwise_conv2d(
      inputs[:, tf.newaxis], windows[tf.newaxis, :, :, tf.newaxis],
      strides=(1, strides, strides, 1), padding="SAME")[:, 0]


def op_candidates(leaf, batch, samples):
  """{(op, path): (fn(x) -> output, input x, variables)} for LEAF's ops."""
  rng = np.random.default_rng(1)
  frames = -(-samples // leaf.hop)
  filtered = tf.constant(rng.standard_normal((batch, samples, 2 * leaf.n_filters)), tf.float32)
  energies = tf.constant(rng.random((batch, samples, leaf.n_filters)), tf.float32)
  pooled = tf.constant(rng.random((batch, frames, leaf.n_filters)) + 0.01, tf.float32)
  waveform = tf.constant(rng.standard_normal((batch, samples, 1)) * 0.1, tf.float32)
  conv, pool, pcen = leaf._filterbank, leaf._pooling, leaf._compression
  straightforward_pcen = scan_pcen(pcen)
  sigma = pool.kernel
  # (op, path): (fn, input, variables (None: the layer's own), gradient to the input)
  return {
      ("Gabor conv 401 taps (no input gradient)", "straightforward"): (
          lambda x: tf.nn.conv1d(x, conv.conv_kernel(), stride=1, padding="SAME"),
          waveform, conv.trainable_variables, False),
      ("Gabor conv 401 taps (no input gradient)", "ours"): (
          conv, waveform, conv.trainable_variables, False),
      ("squared modulus", "straightforward"): (straightforward_modulus, filtered, [], True),
      ("squared modulus", "ours"): (leaf._activation, filtered, [], True),
      ("Gaussian pooling", "straightforward"): (
          lambda x: straightforward_pool(x, pool.windows(), leaf.hop), energies, [sigma], True),
      ("Gaussian pooling", "ours"): (pool, energies, [sigma], True),
      ("squared modulus + Gaussian pooling", "straightforward"): (
          lambda x: straightforward_pool(straightforward_modulus(x), pool.windows(), leaf.hop),
          filtered, [sigma], True),
      ("squared modulus + Gaussian pooling", "ours"): (
          pool.pool_squared_modulus, filtered, [sigma], True),
      ("sPCEN", "straightforward"): (straightforward_pcen, pooled, None, True),
      ("sPCEN", "ours"): (pcen, pooled, pcen.trainable_variables, True),
  }


def compile_pair(fn, variables, jit, watch_input):
  """(forward, forward + gradients) as tf.functions of the input."""
  @tf.function(jit_compile=jit)
  def forward(x):
    return fn(x)

  @tf.function(jit_compile=jit)
  def forward_backward(x):
    with tf.GradientTape() as tape:
      if watch_input:
        tape.watch(x)
      loss = tf.reduce_mean(fn(x))
    sources = ([x] if watch_input else []) + list(variables())
    return loss, tape.gradient(loss, sources,
                               unconnected_gradients=tf.UnconnectedGradients.ZERO)

  return forward, forward_backward


def run_once(fn, x):
  start = time.perf_counter()
  tf.nest.map_structure(lambda t: t.numpy(), fn(x))
  return time.perf_counter() - start


def time_round_robin(fns, inputs, repeats):
  """{key: median seconds}, every fn traced first, then timed in turns."""
  for key, fn in fns.items():
    run_once(fn, inputs[key])
  times = {key: [] for key in fns}
  for _ in range(repeats):
    for key, fn in fns.items():
      times[key].append(run_once(fn, inputs[key]))
  return {key: float(np.median(value)) for key, value in times.items()}


def frontend_candidates():
  names = ["mel", "leaf", "sincnet", "sincnet_plus", "tdfbanks"]
  names += [name for name in tf_frontends.FRONTENDS if name not in names]
  return {name: tf_frontends.get(name) for name in names}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--jit", action="store_true", help="XLA-compile every candidate")
  args = parser.parse_args()
  samples = int(16000 * args.seconds)
  waveform = tf.constant(np.random.default_rng(0).standard_normal(
      (args.batch, samples)).astype(np.float32) * 0.1)

  leaf = tf_frontends.Leaf()
  leaf.build(waveform.shape)
  fns, inputs = {}, {}
  ops = op_candidates(leaf, args.batch, samples)
  for (op, path), (fn, x, variables, watch_input) in ops.items():
    def variables_of(fn=fn, variables=variables):
      return variables if variables is not None else fn.trainable_variables
    forward, forward_backward = compile_pair(fn, variables_of, args.jit, watch_input)
    for step, step_fn in (("fwd", forward), ("fwd+grad", forward_backward)):
      fns[(op, path, step)], inputs[(op, path, step)] = step_fn, x
  plain_leaf, plain_variables = straightforward_leaf(leaf)
  frontend_fns = {"leaf, straightforward (leaf-audio's ops)": (plain_leaf, plain_variables)}
  frontend_fns.update({name: (layer, None) for name, layer in frontend_candidates().items()})
  for name, (fn, variables) in frontend_fns.items():
    def variables_of(fn=fn, variables=variables):
      return variables if variables is not None else fn.trainable_variables
    forward, forward_backward = compile_pair(fn, variables_of, args.jit, watch_input=False)
    for step, step_fn in (("fwd", forward), ("fwd+grad", forward_backward)):
      fns[(name, step)], inputs[(name, step)] = step_fn, waveform
  median = time_round_robin(fns, inputs, args.repeats)

  print(f"CPU: {cpu_description()}; {onednn_description()}; TF {tf.__version__}")
  print(f"batch {args.batch} x {args.seconds:g} s at 16 kHz, median of {args.repeats}, "
        f"jit={args.jit}")
  print(f"\nLEAF's ops (+ gradient to the op's input) | {'straightforward':>21s} | "
        f"{'ours':>21s} | speed-up")
  print(f"{'op':45s} | {'fwd ms':>9s} {'+grad ms':>11s} | {'fwd ms':>9s} {'+grad ms':>11s} |")
  for op in dict.fromkeys(op for op, _ in ops):
    plain = [median[(op, "straightforward", s)] * 1e3 for s in ("fwd", "fwd+grad")]
    ours = [median[(op, "ours", s)] * 1e3 for s in ("fwd", "fwd+grad")]
    print(f"{op:45s} | {plain[0]:9.1f} {plain[1]:11.1f} | {ours[0]:9.1f} {ours[1]:11.1f} | "
          f"{plain[1] / ours[1]:5.2f}x")

  mel = median[("mel", "fwd")]
  plain = median[("leaf, straightforward (leaf-audio's ops)", "fwd+grad")]
  print(f"\n{'frontend':42s} {'fwd ms':>8s} {'x mel':>6s} {'fwd+grad ms':>12s} "
        f"{'x mel':>6s} {'clips/s':>8s} {'vs straightforward':>19s}")
  for name in frontend_fns:
    fwd, both = median[(name, "fwd")], median[(name, "fwd+grad")]
    print(f"{name:42s} {fwd * 1e3:8.1f} {fwd / mel:6.1f} {both * 1e3:12.1f} "
          f"{both / mel:6.1f} {args.batch / both:8.1f} {plain / both:18.2f}x")

  reference = plain_leaf(waveform).numpy()
  ours = leaf(waveform).numpy()
  print(f"\nleaf, ours vs straightforward: max |diff| / max |out| = "
        f"{np.abs(ours - reference).max() / np.abs(reference).max():.2e}")


if __name__ == "__main__":
  main()
