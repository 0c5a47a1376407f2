r"""Builds the embedded demo set: AudioSet-style multi-label clips from Debian-packaged sounds, offline.

  python -m train.demo_data --output_dir=/tmp/demo_data [--seed=0 --num_clips=1200]

9 classes (AudioSet ids and names: Speech, Piano, Violin, Trumpet, Flute, Guitar, Drum, Tabla, Bell),
clips of 2-5 s at 16 kHz with 1-3 labels each over an unlabelled background bed (vinyl hiss, ambience,
or pink noise). Each source recording (one sample file, one espeak-ng utterance, one fluidsynth phrase)
is assigned to exactly one split, so no source is heard in both train and eval. Events are placed at
random offsets and gains and never looped: a source longer than the clip is excerpted, a shorter one
is placed once (short one-shots: up to three different sources of the class).
The clips are written as WAV files plus a CSV manifest and go through prepare_data like any user data;
same seed, same packages -> same bytes. About 30 s on 2 CPU cores for 1200 clips.
"""
import csv
import json
import os
import shutil
import time

from train import console  # first: TensorFlow's C++ log level (off unless --verbose)
import tf_frontends.legacy_keras  # noqa: F401,E402  (before TensorFlow)

import numpy as np
from absl import app, flags, logging

from train import audio_io, demo_sources, prepare_data

FLAGS = flags.FLAGS

SAMPLE_RATE = 16000
MIN_SECONDS, MAX_SECONDS = 2.0, 5.0
LABEL_COUNT_PROBS = (0.4, 0.35, 0.25)        # P(1, 2, 3 labels)
SHORT_EVENT_SECONDS = 1.0


def define_flags():
  """Flags of the binary (only when run as one, so importing this module defines none)."""
  console.define_verbose_flag()
  flags.DEFINE_string("output_dir", None, "Where shards and dataset_info.json go.")
  flags.DEFINE_integer("seed", 0, "Seed: same seed and package versions give the same bytes.")
  flags.DEFINE_integer("num_clips", 1200, "Clips in train + eval.")
  flags.DEFINE_float("eval_fraction", 0.2, "Share of clips and of source recordings held out.")
  flags.DEFINE_integer("examples_per_shard", 128, "Shard size (the demo's 1200 clips: 8 + 2 shards).")
  flags.DEFINE_integer("num_workers", min(os.cpu_count() or 1, 4), "prepare_data processes.")
  flags.DEFINE_bool("keep_clips", False, "Keep the intermediate WAVs and manifest in DIR/clips.")


def split_sources(sources, eval_fraction, rng):
  """{"train": [...], "eval": [...]}: per label, a seeded share of its sources goes to eval."""
  out = {"train": [], "eval": []}
  for label in sorted({s.label for s in sources}):
    group = [s for s in sources if s.label == label]
    order = rng.permutation(len(group))
    n_eval = min(max(1, int(round(eval_fraction * len(group)))), len(group) - 1)
    for rank, i in enumerate(order):
      out["eval" if rank < n_eval else "train"].append(group[i])
  return out


def _place(clip, audio, gain, rng):
  """Adds `audio` once: an excerpt if it is longer than the clip, else at a random offset."""
  n = clip.shape[0]
  if audio.shape[0] >= n:
    # the loudest of three random excerpts, so the labelled event is audible
    starts = rng.integers(0, audio.shape[0] - n + 1, size=3)
    start = max(starts, key=lambda s: float(np.sum(audio[s:s + n] ** 2)))
    clip += gain * audio[start:start + n]
  else:
    offset = int(rng.integers(0, n - audio.shape[0] + 1))
    clip[offset:offset + audio.shape[0]] += gain * audio


def pink_noise(num_samples, rng):
  """1/f noise by shaping white noise's spectrum; unit peak."""
  size = 1 << (num_samples - 1).bit_length()           # power of two: clip lengths are often prime
  spectrum = np.fft.rfft(rng.standard_normal(size))
  spectrum[1:] /= np.sqrt(np.arange(1, spectrum.shape[0]))
  spectrum[0] = 0.0
  noise = np.fft.irfft(spectrum, n=size)[:num_samples]
  return (noise / max(np.max(np.abs(noise)), 1e-9)).astype(np.float32)


def mix_clip(by_label, backgrounds, class_names, rng):
  """-> (float32 [samples] with peak < 1, sorted label names, source names used)."""
  n = int(rng.integers(int(MIN_SECONDS * SAMPLE_RATE), int(MAX_SECONDS * SAMPLE_RATE) + 1))
  clip = np.zeros(n, np.float64)
  num_labels = int(rng.choice([1, 2, 3], p=LABEL_COUNT_PROBS))
  labels = sorted(rng.choice(class_names, num_labels, replace=False).tolist())
  used = []
  for label in labels:
    pool = by_label[label]
    first = pool[int(rng.integers(len(pool)))]
    events = [first]
    if first.audio.shape[0] < SHORT_EVENT_SECONDS * SAMPLE_RATE:
      extra = int(rng.integers(0, 3))
      others = [s for s in pool if s is not first]
      events += [others[i] for i in rng.choice(len(others), min(extra, len(others)), replace=False)]
    for source in events:
      _place(clip, source.audio, 10 ** (rng.uniform(-10, 0) / 20), rng)
      used.append(source.name)
  if rng.random() < 0.5:
    bed = backgrounds[int(rng.integers(len(backgrounds)))]
    _place(clip, bed.audio, 10 ** (rng.uniform(-34, -22) / 20), rng)
    used.append(bed.name)
  else:
    clip += 10 ** (rng.uniform(-40, -28) / 20) * pink_noise(n, rng)
  clip *= rng.uniform(0.3, 0.9) / max(np.max(np.abs(clip)), 1e-9)
  return clip.astype(np.float32), labels, used


def build(output_dir, *, seed=0, num_clips=1200, eval_fraction=0.2, examples_per_shard=128,
          num_workers=2, keep_clips=False, quiet=False):
  """Writes the demo set to output_dir; returns its dataset_info."""
  if num_clips < 2 or not 0 < eval_fraction < 1:
    raise ValueError(f"need num_clips >= 2 and 0 < eval_fraction < 1, got {num_clips}, "
                     f"{eval_fraction}")
  start = time.monotonic()
  versions = demo_sources.check_packages()
  rng = np.random.default_rng([seed, 0])
  sources = demo_sources.collect(SAMPLE_RATE, seed)
  by_split = split_sources(sources, eval_fraction, rng)
  class_names = [name for _, name in demo_sources.CLASSES]
  classes = [{"index": i, "id": cid, "display_name": name}
             for i, (cid, name) in enumerate(demo_sources.CLASSES)]

  clip_dir = os.path.join(output_dir, "clips")
  os.makedirs(clip_dir, exist_ok=True)
  manifest_path = os.path.join(clip_dir, "manifest.csv")
  n_eval = max(1, int(round(eval_fraction * num_clips)))
  with open(manifest_path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["path", "labels", "id", "split"])
    for split, count in (("train", num_clips - n_eval), ("eval", n_eval)):
      pool = by_split[split]
      by_label = {name: [s for s in pool if s.label == name] for name in class_names}
      backgrounds = [s for s in pool if s.label == demo_sources.BACKGROUND]
      for k in range(count):
        audio, labels, _ = mix_clip(by_label, backgrounds, class_names, rng)
        name = f"{split}-{k:05d}.wav"
        with open(os.path.join(clip_dir, name), "wb") as clip_file:
          clip_file.write(audio_io.encode_wav(audio, SAMPLE_RATE))
        writer.writerow([name, ";".join(labels), f"demo-{name[:-4]}", split])
  mixed_s = time.monotonic() - start

  entries, skipped = prepare_data.read_inputs([manifest_path], [], [], classes)
  extra = {"demo": {
      "generator": "train.demo_data", "seed": seed, "num_clips": num_clips,
      "eval_fraction": eval_fraction, "packages": versions,
      "sources": {split: sorted(s.name for s in pool) for split, pool in by_split.items()},
  }}
  info = prepare_data.prepare(entries, classes, output_dir, skipped=skipped,
                              sample_rate=SAMPLE_RATE, examples_per_shard=examples_per_shard,
                              num_workers=num_workers, seed=seed, extra_info=extra, quiet=quiet)
  if not keep_clips:
    shutil.rmtree(clip_dir)
  if not quiet:
    logging.info("Demo set: %d sources, mixed in %.1f s, total %.1f s.", len(sources), mixed_s,
                 time.monotonic() - start)
  return info


def main(argv):
  del argv
  if not FLAGS.output_dir:
    raise app.UsageError("--output_dir is required")
  try:
    info = build(FLAGS.output_dir, seed=FLAGS.seed, num_clips=FLAGS.num_clips,
                 eval_fraction=FLAGS.eval_fraction, examples_per_shard=FLAGS.examples_per_shard,
                 num_workers=FLAGS.num_workers, keep_clips=FLAGS.keep_clips)
  except (ValueError, RuntimeError) as e:
    raise app.UsageError(str(e)) from None
  for split, s in info["splits"].items():
    logging.info("%s: %d clips, %.3f h, %d skipped", split, s["num_examples"], s["hours"],
                 s["num_skipped"])
  print(json.dumps({split: s["num_examples"] for split, s in info["splits"].items()}))


if __name__ == "__main__":
  define_flags()
  app.run(main)
