r"""LEAF's speed as a Keras 3 layer on each backend, next to the tf_keras layer, same run.

    .venv/bin/python benchmarks/keras3.py [--batch 8 --seconds 5 --repeats 5 --rounds 2]

Each path runs in its own process (KERAS_BACKEND is read when Keras is imported): the
tf_keras `tf_frontends.Leaf()` in a tf.function, `tf_frontends.keras3.Leaf()` on the
TensorFlow backend (tf.function, no XLA, as the tf_keras row), on JAX (jax.jit) and on
PyTorch (eager; only where torch is installed). Every process compiles, warms up twice, then
times `repeats` batches; the paths run in turn, `rounds` times, in alternating order so that
load on a shared machine hits them alike. "fwd+grad" is a forward pass plus the gradient of
the mean output with respect to every trainable weight. Times are medians, in ms per batch.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's tf_frontends, whatever is installed
PATHS = {  # path -> KERAS_BACKEND of its process (None: the tf_keras layer)
    "tf_keras Leaf (tf.function)": None,
    "keras3 Leaf, TensorFlow backend (tf.function)": "tensorflow",
    "keras3 Leaf, JAX backend (jax.jit)": "jax",
    "keras3 Leaf, PyTorch backend (eager)": "torch",
}


def _timed(fn, warmups, repeats):
  for _ in range(warmups):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def worker(backend, batch, seconds, repeats):
  """Times forward and forward + gradients of LEAF in this process; returns the lists (s)."""
  if backend is not None:
    # Keras (and with it torch's triton) before TensorFlow: the other order crashes in
    # triton's import with torch 2.14's CUDA wheel (docs/keras3.md).
    import keras  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  import numpy as np  # pylint: disable=import-outside-toplevel
  x = np.random.RandomState(0).uniform(-1, 1, (batch, int(16000 * seconds))).astype(np.float32)
  if backend in (None, "tensorflow"):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if backend is None:
      import tf_frontends  # pylint: disable=import-outside-toplevel
      layer = tf_frontends.Leaf()
    else:
      from tf_frontends import keras3  # pylint: disable=import-outside-toplevel
      layer = keras3.Leaf()
    layer.build((None, None))
    variables = layer.trainable_variables

    @tf.function
    def forward(x):
      return layer(x)

    @tf.function
    def forward_backward(x):
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(layer(x))
      return loss, tape.gradient(loss, variables)

    x = tf.constant(x)
    fwd = lambda: forward(x).numpy()
    grad = lambda: [g.numpy() for g in forward_backward(x)[1]]
  elif backend == "jax":
    import jax  # pylint: disable=import-outside-toplevel
    from tf_frontends import keras3  # pylint: disable=import-outside-toplevel
    layer = keras3.Leaf()
    layer.build((None, None))
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss_fn(trainable, x):
      return layer.stateless_call(trainable, non_trainable, x)[0].mean()

    forward = jax.jit(lambda t, x: layer.stateless_call(t, non_trainable, x)[0])
    forward_backward = jax.jit(jax.value_and_grad(loss_fn))
    x = jax.numpy.asarray(x)
    fwd = lambda: forward(trainable, x).block_until_ready()
    grad = lambda: jax.block_until_ready(forward_backward(trainable, x))
  else:
    import torch  # pylint: disable=import-outside-toplevel
    from tf_frontends import keras3  # pylint: disable=import-outside-toplevel
    layer = keras3.Leaf()
    layer.build((None, None))
    variables = [v.value for v in layer.trainable_variables]
    x = torch.as_tensor(x)

    def fwd():
      with torch.no_grad():
        layer(x)

    def grad():
      torch.autograd.grad(layer(x).mean(), variables)

  return {"forward": _timed(fwd, 2, repeats), "fwd+grad": _timed(grad, 2, repeats)}


def _run_path(backend, args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_USE_LEGACY_KERAS", None)
  if backend is not None:
    env["KERAS_BACKEND"] = backend
  command = [sys.executable, os.path.abspath(__file__), "--worker", backend or "tf_keras",
             "--batch", str(args.batch), "--seconds", str(args.seconds),
             "--repeats", str(args.repeats)]
  process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
  if process.returncode != 0:
    raise RuntimeError(f"benchmarks/keras3.py: the {backend or 'tf_keras'} worker failed:\n"
                       f"{process.stderr[-3000:]}")
  return json.loads(process.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("model name"):
          return line.partition(":")[2].strip()
  except OSError:
    pass
  import platform  # pylint: disable=import-outside-toplevel
  return platform.processor() or platform.machine()


def _version(package):
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _median_ms(values):
  values = sorted(values)
  middle = len(values) // 2
  median = values[middle] if len(values) % 2 else 0.5 * (values[middle - 1] + values[middle])
  return 1e3 * median


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    backend = None if args.worker == "tf_keras" else args.worker
    print(json.dumps(worker(backend, args.batch, args.seconds, args.repeats)))
    return
  paths = {name: backend for name, backend in PATHS.items()
           if backend != "torch" or importlib.util.find_spec("torch")}
  samples = {name: {"forward": [], "fwd+grad": []} for name in paths}
  order = list(paths)
  for round_index in range(args.rounds):
    for name in order if round_index % 2 == 0 else order[::-1]:
      for key, values in _run_path(paths[name], args).items():
        samples[name][key].extend(values)
  versions = ", ".join(f"{package} {_version(package)}" for package in
                       ("tensorflow", "keras", "jax", "torch") if _version(package))
  print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {versions}; batch {args.batch} x {args.seconds:g} s "
        f"at 16 kHz; median of {args.rounds} x {args.repeats}, ms per batch")
  baseline = _median_ms(samples[order[0]]["fwd+grad"])
  print(f"{'path':50s} {'forward':>9s} {'fwd+grad':>9s} {'fwd+grad vs tf_keras':>21s}")
  for name in order:
    grad_ms = _median_ms(samples[name]["fwd+grad"])
    print(f"{name:50s} {_median_ms(samples[name]['forward']):9.1f} {grad_ms:9.1f} "
          f"{grad_ms / baseline:20.2f}x")


if __name__ == "__main__":
  main()
