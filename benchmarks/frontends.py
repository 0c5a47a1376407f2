r"""Frontend speed: ours next to google-research/leaf-audio's own code, per op and per frontend.

    git clone https://github.com/google-research/leaf-audio .leaf-audio
    .venv/bin/python benchmarks/frontends.py [--leaf_audio_dir=.leaf-audio] \
        [--batch 8 --seconds 5 --repeats 5 --jit] [--profile]

The reference is leaf-audio's own classes (`frontend.Leaf`, `SincNet`, `SincNetPlus`,
`TimeDomainFilterbanks`, `MelFilterbanks`, and LEAF's layers one by one), imported from a
checkout (`benchmarks/leaf_audio_reference.py`); without `--leaf_audio_dir` only our rows
are timed. The floor of any exact LEAF is the bare convolution: `tf.nn.conv1d` of the
waveform with 401 taps x 80 channels, forward plus TensorFlow's own kernel gradient.
Every candidate is compiled once (tf.function), then all are timed round-robin,
`repeats` times each, so load on a shared machine hits them alike. Times are medians per
batch; "fwd+grad" is a forward pass plus the gradient of a scalar loss with respect to
every trainable variable (and, for the per-op rows, to the op's input, which the layer
before it needs). The header names the CPU and whether oneDNN is on; the last lines give
how far our outputs are from leaf-audio's (relative to the largest value).

`--profile` instead prints where LEAF's forward + parameter gradients spend their time, op by
op (TensorFlow's profiler, one call each of ours, leaf-audio's and the bare convolution, ops run
one at a time so that no op's time includes another's).
"""
import argparse
import collections
import glob
import os
import platform
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import legacy_keras  # noqa: E402,F401  (an entry point: tf.keras -> tf_keras before TF loads)
import tf_frontends  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import leaf_audio_reference  # noqa: E402
from tf_frontends import mel as mel_lib  # noqa: E402
# The profiler's own record format (no public reader in TensorFlow).
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

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


def op_times_ms(fn, x):
  """{"scope/op:kernel": ms} of one call of fn(x) (after a warm-up call), from the profiler.

  The profiler records each op's kernel on the host thread that ran it; with inter-op
  parallelism 1 (set by --profile) they do not overlap, so the times add up to the call.
  """
  run_once(fn, x)
  logdir = tempfile.mkdtemp(prefix="frontends_profile_")
  try:
    tf.profiler.experimental.start(logdir)
    run_once(fn, x)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
      with open(path, "rb") as record:
        space.MergeFromString(record.read())
  finally:
    shutil.rmtree(logdir, ignore_errors=True)
  times = collections.Counter()
  for plane in space.planes:
    if plane.name.startswith("/host:CPU"):
      for line in plane.lines:
        for event in line.events:
          name = plane.event_metadata[event.metadata_id].name
          if ":" in name and "::" not in name and " " not in name:  # "scope/op:Kernel", not a span
            times[name] += event.duration_ps * 1e-9
  return times


def is_filterbank_conv(op_name):
  """The waveform's convolution or its gradients (TF's or oneDNN's kernels), not the pooling's."""
  kernel = op_name.rpartition(":")[2]
  return "Depthwise" not in kernel and kernel.endswith(
      ("Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput"))


def print_profile(candidates, repeats, top):
  """Per candidate: median time of each op over `repeats` round-robin calls, the costliest
  `top` of them, and the time outside the filterbank convolution (what a frontend adds to it)."""
  times = {label: collections.defaultdict(list) for label in candidates}
  for _ in range(repeats):
    for label, (fn, x) in candidates.items():
      for name, ms in op_times_ms(fn, x).items():
        times[label][name].append(ms)
  for label, op_times in times.items():
    median = collections.Counter({name: float(np.median(values + [0.0] * (repeats - len(values))))
                                  for name, values in op_times.items()})
    total = sum(median.values())
    conv = sum(ms for name, ms in median.items() if is_filterbank_conv(name))
    print(f"\n{label}: {total:.1f} ms in ops; the filterbank convolution {conv:.1f} ms, "
          f"the rest {total - conv:.1f} ms ({100 * (total - conv) / conv:.0f} % of the conv)")
    for name, ms in median.most_common(top):
      print(f"  {ms:8.1f} ms {100 * ms / total:5.1f} %  {name}")


_CHECKOUT_IN_PROJECT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   ".leaf-audio")
DEFAULT_LEAF_AUDIO_DIR = os.environ.get(
    "LEAF_AUDIO_DIR", _CHECKOUT_IN_PROJECT if os.path.isdir(_CHECKOUT_IN_PROJECT) else "")

# (name in the table, our frontend's name, leaf-audio's class in its `frontend` module)
FRONTENDS = [("LEAF", "leaf", "Leaf"), ("SincNet", "sincnet", "SincNet"),
             ("SincNet+", "sincnet_plus", "SincNetPlus"),
             ("TD-filterbanks", "tdfbanks", "TimeDomainFilterbanks"),
             ("mel", "mel", "MelFilterbanks"), ("EfficientLEAF", "efficientleaf", None)]
MEL_TFLITE = "mel, TFLite form"   # the DFT as a matrix product (mel.builtin_ops_only)


def op_candidates(leaf, reference_leaf, batch, samples):
  """{(op, path): (fn(x) -> output, input x, variables, gradient to the input)} for LEAF's ops.

  path "leaf-audio" is the layer leaf-audio's own `Leaf` runs for that op; "floor" is the
  bare convolution with TensorFlow's own kernel gradient.
  """
  rng = np.random.default_rng(1)
  frames = -(-samples // leaf.hop)
  filtered = tf.constant(rng.standard_normal((batch, samples, 2 * leaf.n_filters)), tf.float32)
  energies = tf.constant(rng.random((batch, samples, leaf.n_filters)), tf.float32)
  pooled = tf.constant(rng.random((batch, frames, leaf.n_filters)) + 0.01, tf.float32)
  waveform = tf.constant(rng.standard_normal((batch, samples, 1)) * 0.1, tf.float32)
  taps = tf.Variable(leaf.filterbank.conv_kernel(), name="bare_taps")
  conv, pool, pcen = leaf.filterbank, leaf.pooling, leaf.compression
  candidates = {
      ("Gabor conv 401 taps (no input gradient)", "floor"): (
          lambda x: tf.nn.conv1d(x, taps, stride=1, padding="SAME"), waveform, [taps], False),
      ("Gabor conv 401 taps (no input gradient)", "ours"): (
          conv, waveform, conv.trainable_variables, False),
      ("squared modulus", "ours"): (leaf.activation, filtered, [], True),
      ("Gaussian pooling", "ours"): (pool, energies, pool.trainable_variables, True),
      ("squared modulus + Gaussian pooling", "ours"): (
          pool.pool_squared_modulus, filtered, pool.trainable_variables, True),
      ("sPCEN", "ours"): (pcen, pooled, pcen.trainable_variables, True),
  }
  if reference_leaf is not None:
    their_conv = reference_leaf._complex_conv
    their_pool = reference_leaf._pooling
    their_pcen = reference_leaf._compress_fn
    their_modulus = reference_leaf._activation
    candidates.update({
        ("Gabor conv 401 taps (no input gradient)", "leaf-audio"): (
            their_conv, waveform, their_conv.trainable_variables, False),
        ("squared modulus", "leaf-audio"): (their_modulus, filtered, [], True),
        ("Gaussian pooling", "leaf-audio"): (
            their_pool, energies, their_pool.trainable_variables, True),
        ("squared modulus + Gaussian pooling", "leaf-audio"): (
            lambda x: their_pool(their_modulus(x)), filtered, their_pool.trainable_variables,
            True),
        ("sPCEN", "leaf-audio"): (their_pcen, pooled, their_pcen.trainable_variables, True),
    })
  return candidates


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--leaf_audio_dir", default=DEFAULT_LEAF_AUDIO_DIR,
                      help="root of a google-research/leaf-audio checkout (the reference); "
                           "default: $LEAF_AUDIO_DIR, else .leaf-audio/ (git-ignored) if there")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--jit", action="store_true", help="XLA-compile every candidate")
  parser.add_argument("--profile", action="store_true",
                      help="print LEAF's forward + gradients op by op instead of the tables")
  args = parser.parse_args()
  if args.profile:
    tf.config.threading.set_inter_op_parallelism_threads(1)
  tf.get_logger().setLevel("ERROR")   # leaf-audio's Gabor taps are complex64 cast to float32
  reference = leaf_audio_reference.load(args.leaf_audio_dir) if args.leaf_audio_dir else None
  samples = int(16000 * args.seconds)
  waveform = tf.constant(np.random.default_rng(0).standard_normal(
      (args.batch, samples)).astype(np.float32) * 0.1)

  ours = {name: tf_frontends.get(key) for name, key, _ in FRONTENDS}
  theirs = {name: getattr(reference.frontend, cls)() for name, _, cls in FRONTENDS
            if reference is not None and cls is not None}
  for layer in [*ours.values(), *theirs.values()]:
    layer(waveform[:1, :1600])     # build
  if args.profile:
    floor_taps = tf.Variable(ours["LEAF"].filterbank.conv_kernel(), name="bare_taps")
    profiled = {"ours LEAF": (ours["LEAF"], ours["LEAF"].trainable_variables, waveform),
                "bare conv1d, TF kernel gradient (floor)": (
                    lambda x: tf.nn.conv1d(x, floor_taps, stride=1, padding="SAME"),
                    [floor_taps], waveform[:, :, tf.newaxis])}
    if "LEAF" in theirs:
      profiled["leaf-audio LEAF"] = (theirs["LEAF"], theirs["LEAF"].trainable_variables,
                                     waveform)
    print(f"CPU: {cpu_description()}; {onednn_description()}; TF {tf.__version__}")
    print(f"LEAF forward + parameter gradients, batch {args.batch} x {args.seconds:g} s, "
          f"jit={args.jit}, one op at a time, median of {args.repeats} (ms)")
    print_profile({label: (compile_pair(fn, lambda v=variables: v, args.jit, False)[1], x)
                   for label, (fn, variables, x) in profiled.items()}, args.repeats, top=12)
    return
  fns, inputs = {}, {}
  ops = op_candidates(ours["LEAF"], theirs.get("LEAF"), args.batch, samples)
  candidates = {key: value for key, value in ops.items()}
  for name, layer in ours.items():
    candidates[(name, "ours")] = (layer, waveform, layer.trainable_variables, False)

  def mel_for_tflite(x):
    with mel_lib.builtin_ops_only():    # active while tf.function traces this
      return ours["mel"](x)
  candidates[(MEL_TFLITE, "ours")] = (mel_for_tflite, waveform, [], False)
  for name, layer in theirs.items():
    candidates[(name, "leaf-audio")] = (layer, waveform, layer.trainable_variables, False)
  for key, (fn, x, variables, watch_input) in candidates.items():
    forward, forward_backward = compile_pair(fn, lambda v=variables: v, args.jit, watch_input)
    for step, step_fn in (("fwd", forward), ("fwd+grad", forward_backward)):
      fns[(*key, step)], inputs[(*key, step)] = step_fn, x
  median = {key: value * 1e3 for key, value in
            time_round_robin(fns, inputs, args.repeats).items()}

  def cell(*key):
    return (f"{median[(*key, 'fwd')]:8.1f} {median[(*key, 'fwd+grad')]:9.1f}"
            if (*key, "fwd") in median else f"{'-':>8s} {'-':>9s}")

  def ratio(numerator_key, denominator_key):
    numerator = median.get((*numerator_key, "fwd+grad"))
    denominator = median.get((*denominator_key, "fwd+grad"))
    return f"{numerator / denominator:6.2f}x" if numerator and denominator else f"{'-':>7s}"

  print(f"CPU: {cpu_description()}; {onednn_description()}; TF {tf.__version__}")
  print(f"batch {args.batch} x {args.seconds:g} s at 16 kHz, median of {args.repeats}, "
        f"jit={args.jit}; ms for fwd / fwd+grad")
  print(f"\n{'LEAF op (+ gradient to its input)':42s} | {'leaf-audio':>18s} | {'ours':>18s} | "
        f"{'speed-up':>8s} | {'ours / floor':>12s}")
  floor_key = ("Gabor conv 401 taps (no input gradient)", "floor")
  for op in dict.fromkeys(op for op, _ in ops):
    print(f"{op:42s} | {cell(op, 'leaf-audio')} | {cell(op, 'ours')} | "
          f"{ratio((op, 'leaf-audio'), (op, 'ours')):>8s} | "
          f"{ratio((op, 'ours'), floor_key) if 'conv' in op else '':>12s}")
  print(f"{'bare conv1d, TF kernel gradient (floor)':42s} | {'':18s} | {cell(*floor_key)} |")

  mel = median[("mel", "ours", "fwd")]
  print(f"\n{'frontend':15s} | {'leaf-audio':>18s} | {'ours':>18s} | {'speed-up':>8s} | "
        f"{'ours / floor':>12s} | {'ours fwd+grad / mel fwd':>23s}")
  for name in [name for name, _, _ in FRONTENDS] + [MEL_TFLITE]:
    print(f"{name:15s} | {cell(name, 'leaf-audio')} | {cell(name, 'ours')} | "
          f"{ratio((name, 'leaf-audio'), (name, 'ours')):>8s} | "
          f"{ratio((name, 'ours'), floor_key):>12s} | "
          f"{median[(name, 'ours', 'fwd+grad')] / mel:22.1f}x")

  for name, layer in theirs.items():
    if name == "TD-filterbanks":
      print(f"{name}: not compared (leaf-audio pools VALID, ours SAME: other frames)")
      continue
    expected = layer(waveform).numpy()
    got = ours[name](waveform).numpy()
    print(f"{name}, ours vs leaf-audio: max |diff| / max |out| = "
          f"{np.abs(got - expected).max() / np.abs(expected).max():.2e}")


if __name__ == "__main__":
  main()
