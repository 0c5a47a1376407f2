r"""EfficientLEAF speed next to mel, exact LEAF and the authors' PyTorch module, in one run.

    .venv/bin/python benchmarks/efficient_leaf.py [--batch 8 --seconds 5 --repeats 5]
        [--authors_source=/tmp/EfficientLEAF]   # a checkout of CPJKU/EfficientLEAF

Issue goals: our EfficientLEAF forward + backward <= 10x our mel forward, and faster than
the authors' module. "fwd+bwd" is their `--frontend-benchmark` step: the frontend in
training mode, then the gradient of the sum of its outputs with respect to every trainable
parameter. Each row is compiled once (tf.function, XLA where marked), then all rows are
timed round-robin `repeats` times so load on a shared machine hits them alike; the table
gives the median milliseconds per batch and the ratio to our mel forward.

With --authors_source and a `.venv-torch/` (torch + numpy, see
tests/fixtures/efficientleaf/make_efficientleaf_fixtures.py), their modules run in a
worker process of that environment on the same waveform, one round of theirs after each
round of ours: their "Gabor 8G-opt" EfficientLeaf (fwd+bwd and fwd) and their mel frontend
(STFT + mel filterbank + the same LogTBN, main.py's "Mel"). Both frameworks use every core.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = os.path.join(ROOT, ".venv-torch", "bin", "python")
SAMPLE_RATE = 16000
N_FILTERS = 40


def waveform(batch, seconds):
  import numpy as np  # pylint: disable=import-outside-toplevel
  return np.random.default_rng(0).uniform(
      -0.5, 0.5, (batch, int(SAMPLE_RATE * seconds))).astype(np.float32)


def authors_worker(source, batch, seconds):
  """Runs in .venv-torch: times their modules, one round per line read from stdin."""
  import torch  # pylint: disable=import-outside-toplevel,import-error
  sys.path.insert(0, source)
  # pylint: disable=import-outside-toplevel,import-error
  from model.efficientleaf import EfficientLeaf, LogTBN
  from model.mel import STFT, MelFilter

  def log_tbn():
    return LogTBN(N_FILTERS, a=5, trainable=True, per_band=True, median_filter=True,
                  append_filtered=True)

  eleaf = EfficientLeaf(n_filters=N_FILTERS, num_groups=8, conv_win_factor=6, stride_factor=16,
                        compression=log_tbn()).train()
  # main.py's "Mel" frontend: 401-sample windows, hop 161, the same compression
  mel = torch.nn.Sequential(STFT(401, 161), MelFilter(SAMPLE_RATE, 401, N_FILTERS, 60.0, 7800.0),
                            log_tbn()).train()
  x = torch.from_numpy(waveform(batch, seconds))

  def fwd_bwd():
    eleaf(x).sum().backward()

  def eleaf_fwd():
    with torch.no_grad():
      eleaf(x)

  def mel_fwd():
    with torch.no_grad():
      mel(x[:, None])

  rows = {"authors' EfficientLeaf 8G-opt fwd+bwd (PyTorch)": fwd_bwd,
          "authors' EfficientLeaf 8G-opt fwd (PyTorch)": eleaf_fwd,
          "authors' mel fwd (PyTorch)": mel_fwd}
  for fn in rows.values():  # warm-up, as their benchmark does
    fn()
  print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
  for _ in sys.stdin:
    times = {}
    for name, fn in rows.items():
      start = time.perf_counter()
      fn()
      times[name] = time.perf_counter() - start
    print(json.dumps(times), flush=True)


def our_rows():
  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, ROOT)
  import tensorflow as tf
  import tf_frontends

  def forward(layer, jit=False):
    return tf.function(lambda x: layer(x), jit_compile=jit)

  def forward_and_backward(layer, jit=False):
    @tf.function(jit_compile=jit)
    def step(x):
      with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True))
      return tape.gradient(loss, layer.trainable_variables,
                           unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return step

  mel, leaf = tf_frontends.MelFilterbanks(), tf_frontends.Leaf()
  eleaf = tf_frontends.EfficientLeaf()
  before = tf_frontends.EfficientLeaf(num_groups=4, conv_win_factor=4.77, stride_factor=1.0,
                                      initializer="leaf", pooling="leaf",
                                      median_bands="subtract")
  return tf, {
      "mel fwd": forward(mel),
      "leaf fwd+bwd": forward_and_backward(leaf),
      "efficientleaf 8G-opt fwd": forward(eleaf),
      "efficientleaf 8G-opt fwd+bwd": forward_and_backward(eleaf),
      "efficientleaf 8G-opt fwd+bwd, XLA": forward_and_backward(eleaf, jit=True),
      "efficientleaf 8G-opt energies fwd": tf.function(eleaf.energies),
      "efficientleaf before (4 groups, stride factor 1) fwd+bwd": forward_and_backward(before),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--authors_source", default="",
                      help="a checkout of CPJKU/EfficientLEAF; needs .venv-torch/")
  parser.add_argument("--authors_worker", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.authors_worker:
    authors_worker(args.authors_source, args.batch, args.seconds)
    return
  load_before = os.getloadavg()[0]
  worker = None
  if args.authors_source:
    if not os.path.isfile(os.path.join(args.authors_source, "model", "efficientleaf.py")):
      sys.exit(f"--authors_source={args.authors_source}: no model/efficientleaf.py there")
    if not os.path.isfile(TORCH_PYTHON):
      sys.exit(f"--authors_source needs {TORCH_PYTHON} (torch + numpy)")
    worker = subprocess.Popen(
        [TORCH_PYTHON, os.path.abspath(__file__), "--authors_worker",
         f"--authors_source={args.authors_source}", f"--batch={args.batch}",
         f"--seconds={args.seconds}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    torch_info = json.loads(worker.stdout.readline())

  tf, table = our_rows()
  import numpy as np  # pylint: disable=import-outside-toplevel
  from benchmarks.frontend_quality import cpu_model  # pylint: disable=import-outside-toplevel
  x = tf.constant(waveform(args.batch, args.seconds))
  for fn in table.values():  # trace, build and compile outside the timing
    tf.nest.map_structure(lambda t: t.numpy(), fn(x))
  times = {name: [] for name in table}
  for _ in range(args.repeats):
    for name, fn in table.items():
      start = time.perf_counter()
      tf.nest.map_structure(lambda t: t.numpy(), fn(x))
      times[name].append(time.perf_counter() - start)
    if worker:
      worker.stdin.write("round\n")
      worker.stdin.flush()
      for name, seconds in json.loads(worker.stdout.readline()).items():
        times.setdefault(name, []).append(seconds)
  if worker:
    worker.stdin.close()
    worker.wait()
  mel_ms = 1e3 * np.median(times["mel fwd"])
  print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; TF {tf.__version__}"
        + (f", PyTorch {torch_info['torch']} ({torch_info['threads']} threads)" if worker else "")
        + f"; batch {args.batch} x {args.seconds:g} s; median of {args.repeats}, round-robin")
  # Other processes on the machine slow every row; compare rows of one run only.
  print(f"1-minute load average before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores")
  print(f"{'path':<58}{'ms':>9}{'x our mel fwd':>15}")
  for name, samples in times.items():
    ms = 1e3 * np.median(samples)
    print(f"{name:<58}{ms:>9.1f}{ms / mel_ms:>15.1f}")


if __name__ == "__main__":
  main()
