r"""Input pipeline supply vs. LEAF + EfficientNet-B0 train-step demand, in clips/s.

    .venv/bin/python benchmarks/input_pipeline.py [--data_dir DIR] [--batch 32 --seconds 5]
    .venv/bin/python benchmarks/input_pipeline.py --shape=audioset [--data_dir DIR]

--shape=audioset measures what one host core supplies at the AudioSet recipe's shape: 10 s
clips, random 5 s crops with mixup (alpha 0.8) in per-replica batches of the 1024-clip global
batch (`--replicas`, default 8: 128 clips), and full-clip eval batches, and how many host cores
a node needs for the seed's rates (2048 samples/s for LEAF + B0, 7250 for mel + B0 on a TPU
v3-8). Without --data_dir it writes synthetic AudioSet-shaped clips (noise, 527 classes, ~3
labels each) as WAV files and runs the real data prep on them first (~1 min).

Supply: train.data.input_pipeline in "train" mode (shuffle, decode_wav, random 5 s crop, batch), in a
process limited to ONE core (TF inter/intra-op pools and tf.data's private pool of size 1), median
clips/s over `repeats` timed windows after a warm-up. Demand: one training step (forward, sigmoid
BCE, gradients, AdamW update) of the default config's classifier (LEAF, EfficientNet-B0,
SpecAugment) on `--step_batch` clips of `--seconds` s, with every core, median of `repeats`.
Each side runs in its own subprocess so the thread settings do not leak. Without --data_dir the
demo set is built into a temporary folder first (~30 s).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


AUDIOSET_CLASSES, AUDIOSET_CLIP_SECONDS, AUDIOSET_MIXUP_ALPHA = 527, 10.0, 0.8
SEED_RATES = {"LEAF + B0": 2048, "mel + B0": 7250}   # samples/s on a TPU v3-8 (audax's table)


def supply(args):
  import legacy_keras  # noqa: F401  (before TensorFlow)
  import tensorflow as tf
  tf.config.threading.set_inter_op_parallelism_threads(1)
  tf.config.threading.set_intra_op_parallelism_threads(1)
  from train.data import input_pipeline
  options = tf.data.Options()
  options.threading.private_threadpool_size = 1
  options.threading.max_intra_op_parallelism = 1
  results = {}
  if args.shape == "audioset":
    # (name, split, mode, batch, mixup): the recipe's training input and its full-clip eval
    runs = [("train", "train", "train", args.batch, AUDIOSET_MIXUP_ALPHA),
            ("full_clip", "eval", "full_clip", args.eval_batch, 0.0)]
  else:
    runs = [(mode, mode, mode, args.batch, 0.0) for mode in ("train", "eval")]
  for name, split, mode, batch, mixup_alpha in runs:
    ds = input_pipeline.make_dataset(args.data_dir, split, batch_size=batch,
                                     crop_seconds=args.seconds, mode=mode, seed=0,
                                     mixup_alpha=mixup_alpha)
    iterator = iter(ds.with_options(options).repeat())
    for _ in range(3):
      next(iterator)
    rates = []
    for _ in range(args.repeats):
      start = time.perf_counter()
      for _ in range(args.batches):
        next(iterator)
      rates.append(batch * args.batches / (time.perf_counter() - start))
    results[name] = sorted(rates)[len(rates) // 2]
  return results


def write_audioset_shaped(data_dir, num_clips):
  """Synthetic AudioSet-shaped data through the real data prep: 10 s noise WAVs, 527 classes."""
  import numpy as np
  import soundfile
  rng = np.random.default_rng(0)
  clips_dir = os.path.join(data_dir, "clips")
  os.makedirs(clips_dir)
  with open(os.path.join(data_dir, "labels.csv"), "w") as f:
    f.write("index,mid,display_name\n")
    f.writelines(f"{k},/m/class{k},class {k}\n" for k in range(AUDIOSET_CLASSES))
  for split, count in (("train", num_clips), ("eval", num_clips // 2)):
    with open(os.path.join(data_dir, f"{split}.csv"), "w") as manifest:
      manifest.write("path,labels\n")
      for i in range(count):
        name = f"clips/{split}_{i:05d}.wav"
        samples = (0.1 * rng.standard_normal(int(AUDIOSET_CLIP_SECONDS * 16000))).astype("float32")
        soundfile.write(os.path.join(data_dir, name), samples, 16000, subtype="PCM_16")
        labels = rng.choice(AUDIOSET_CLASSES, size=3, replace=False)
        manifest.write(f"{name},{';'.join(f'/m/class{k}' for k in labels)}\n")
  output_dir = os.path.join(data_dir, "records")
  subprocess.run([sys.executable, "-m", "train.data.prepare_data",
                  f"--manifest=train={data_dir}/train.csv,eval={data_dir}/eval.csv",
                  f"--label_map={data_dir}/labels.csv", f"--output_dir={output_dir}"],
                 cwd=ROOT, check=True, capture_output=True)
  return output_dir


def demand(args):
  import legacy_keras  # noqa: F401
  import tensorflow as tf
  import tf_keras
  from train import models
  from train.configs import default
  config = default.get_config()
  config.model.num_classes = 527                # AudioSet's head
  config.model.use_sync_bn = False
  model = models.create_model(config)
  optimizer = tf_keras.optimizers.AdamW(1e-4, weight_decay=1e-6)
  samples = int(args.seconds * 16000)
  audio = tf.random.uniform([args.step_batch, samples], -0.5, 0.5)
  labels = tf.cast(tf.random.uniform([args.step_batch, 527]) < 0.01, tf.float32)

  @tf.function
  def step(x, y):
    with tf.GradientTape() as tape:
      logits = model(x, training=True)
      loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, logits))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  start = time.perf_counter()
  step(audio, labels).numpy()
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    step(audio, labels).numpy()
    times.append(time.perf_counter() - start)
  median = sorted(times)[len(times) // 2]
  return {"step_s": median, "clips_per_s": args.step_batch / median, "compile_s": compile_s,
          "params": int(sum(v.shape.num_elements() for v in model.trainable_variables))}


def _run_phase(phase, args):
  command = [sys.executable, os.path.abspath(__file__), f"--phase={phase}",
             f"--shape={args.shape}", f"--eval_batch={args.eval_batch}",
             f"--data_dir={args.data_dir}", f"--batch={args.batch}", f"--seconds={args.seconds}",
             f"--batches={args.batches}", f"--repeats={args.repeats}",
             f"--step_batch={args.step_batch}"]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
  lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT")]
  if result.returncode != 0 or not lines:
    raise RuntimeError(f"{phase} phase failed:\n{result.stderr[-3000:]}")
  return json.loads(lines[-1][len("RESULT"):])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default="", help="prepare_data output (default: build demo)")
  parser.add_argument("--batch", type=int, default=32, help="pipeline batch size")
  parser.add_argument("--seconds", type=float, default=5.0, help="crop length")
  parser.add_argument("--batches", type=int, default=10, help="batches per timed window")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--step_batch", type=int, default=8, help="train-step batch size")
  parser.add_argument("--shape", choices=["demo", "audioset"], default="demo",
                      help="audioset: the AudioSet recipe's input (see the module doc)")
  parser.add_argument("--replicas", type=int, default=8,
                      help="--shape=audioset: replicas sharing the 1024-clip global batch")
  parser.add_argument("--clips", type=int, default=256,
                      help="--shape=audioset: synthetic train clips (eval: half as many)")
  parser.add_argument("--eval_batch", type=int, default=8, help="full-clip eval batch")
  parser.add_argument("--phase", choices=["supply", "demand"], default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.phase:
    print("RESULT" + json.dumps(supply(args) if args.phase == "supply" else demand(args)))
    return
  if args.shape == "audioset":
    audioset_shape(args)
    return
  with tempfile.TemporaryDirectory() as tmp:
    if not args.data_dir:
      args.data_dir = os.path.join(tmp, "demo")
      print(f"building the demo set in {args.data_dir} ...", flush=True)
      subprocess.run([sys.executable, "-m", "train.data.demo.demo_data", f"--output_dir={args.data_dir}"],
                     cwd=ROOT, check=True, capture_output=True)
    pipeline = _run_phase("supply", args)
    step = _run_phase("demand", args)
  print(f"\ninput pipeline, 1 core, batch {args.batch} x {args.seconds:g} s crops "
        f"(median of {args.repeats} x {args.batches} batches):")
  print(f"  train mode (shuffle + random crop)  {pipeline['train']:8.1f} clips/s")
  print(f"  eval mode (centre crop)             {pipeline['eval']:8.1f} clips/s")
  print(f"train step, all {os.cpu_count()} cores, LEAF + EfficientNet-B0 ({step['params']:,} "
        f"params), batch {args.step_batch} x {args.seconds:g} s:")
  print(f"  {step['step_s'] * 1000:8.0f} ms/step  ->  {step['clips_per_s']:8.1f} clips/s demanded "
        f"(first call incl. tracing {step['compile_s']:.1f} s)")
  ratio = pipeline["train"] / step["clips_per_s"]
  print(f"supply / demand = {ratio:.1f}x  (goal >= 5x: {'met' if ratio >= 5 else 'NOT met'})")


def audioset_shape(args):
  from benchmarks import frontends as frontends_benchmark
  args.batch = 1024 // args.replicas
  with tempfile.TemporaryDirectory() as tmp:
    if not args.data_dir:
      print(f"writing {args.clips} + {args.clips // 2} synthetic 10 s clips and preparing them "
            f"in {tmp} ...", flush=True)
      args.data_dir = write_audioset_shaped(tmp, args.clips)
    pipeline = _run_phase("supply", args)
  print(f"CPU: {frontends_benchmark.cpu_description()}")
  print(f"input pipeline at AudioSet's shape, ONE host core (median of {args.repeats} x "
        f"{args.batches} batches):")
  print(f"  train: 10 s clips -> random {args.seconds:g} s crops, mixup alpha "
        f"{AUDIOSET_MIXUP_ALPHA}, batch {args.batch} (1024 / {args.replicas} replicas): "
        f"{pipeline['train']:8.1f} samples/s")
  print(f"  eval:  full 10 s clips, batch {args.eval_batch}: "
        f"{pipeline['full_clip']:8.1f} samples/s")
  print(f"{pipeline['train']:.0f} samples/s per core")
  for name, rate in SEED_RATES.items():
    print(f"  host cores for {name} at {rate} samples/s: {math.ceil(rate / pipeline['train'])} "
          f"(train input), {math.ceil(rate / pipeline['full_clip'])} (full-clip eval input)")
  goal = 256
  print(f"goal >= {goal} samples/s per core: {'met' if pipeline['train'] >= goal else 'NOT met'}")


if __name__ == "__main__":
  main()
