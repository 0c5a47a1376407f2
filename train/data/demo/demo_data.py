r"""Builds the embedded demo set: AudioSet-style multi-label clips from Debian-packaged sounds, offline.

  python -m train.data.demo.demo_data --output_dir=/tmp/demo_data [--seed=0 --num_clips=4800]

9 classes (AudioSet ids and names: Speech, Piano, Violin, Trumpet, Flute, Guitar, Drum, Tabla, Bell),
clips of 2-5 s at 16 kHz with 1-3 classes each, mixed by train/data/demo/demo_mixing.py from real samples and
synthesized sources (train/data/demo/demo_sources.py, train/data/demo/demo_drums.py): many voices, drum kits, three
soundfonts, random EQ, reverb and backgrounds. Each source recording (a sample file, an utterance, a
phrase, a drum pattern) is assigned to exactly one split, so no source is heard in both train and eval.
Every example carries strong labels (each class's audible spans), so a training crop is labelled
with the classes it contains; clip-level labels stay for whole-clip evaluation.
The clips are written as WAV files and go through prepare_data like any user data; same seed, same
packages -> same bytes.
"""
import json
import os
import shutil
import time

from train import console  # first: TensorFlow's C++ log level (off unless --verbose)
import legacy_keras  # noqa: F401,E402  (before TensorFlow)

import numpy as np
from absl import app, flags, logging

from train.data import audio_io, manifests, prepare_data
from train.data.demo import demo_drums, demo_mixing, demo_sources

FLAGS = flags.FLAGS

STAGING_MARK = ".written_by_demo_data"
SAMPLE_RATE = demo_mixing.SAMPLE_RATE


def define_flags():
  """Flags of the binary (only when run as one, so importing this module defines none)."""
  console.define_verbose_flag()
  flags.DEFINE_string("output_dir", None, "Where shards and dataset_info.json go.")
  flags.DEFINE_integer("seed", 0, "Seed: same seed and package versions give the same bytes.")
  flags.DEFINE_integer("num_clips", 4800, "Clips in train + eval.")
  flags.DEFINE_float("eval_fraction", 0.2, "Share of clips and of source recordings held out.")
  flags.DEFINE_integer("examples_per_shard", 128, "Shard size (the demo's 4800 clips: 30 + 8 shards).")
  flags.DEFINE_integer("num_workers", min(os.cpu_count() or 1, 4), "prepare_data processes.")
  flags.DEFINE_bool("keep_clips", False, "Keep the intermediate WAVs and manifest in DIR/clips.")


def collect_sources(sample_rate: int, seed: int):
  """Every demo source (demo_sources + demo_drums), sorted by name."""
  rng = np.random.default_rng([seed, 1])
  sources = demo_sources.sonic_pi_sources(sample_rate)
  sources += demo_sources.speech_sources(sample_rate, rng)
  sources += demo_sources.instrument_sources(sample_rate, rng)
  sources += demo_drums.drum_sources(sample_rate, rng)
  return sorted(sources, key=lambda s: s.name)


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


def _staging_dir(output_dir):
  """OUTPUT_DIR/clips, marked as the builder's: it is deleted after the build, so a folder of that
  name the builder did not write is refused, never deleted."""
  clip_dir = os.path.join(output_dir, "clips")
  mark = os.path.join(clip_dir, STAGING_MARK)
  if os.path.lexists(clip_dir) and not os.path.exists(mark) and (
      not os.path.isdir(clip_dir) or os.listdir(clip_dir)):
    raise ValueError(f"{clip_dir} exists and was not written by the demo builder, which stages "
                     "its WAVs there and deletes them afterwards: move it or choose another "
                     "--output_dir")
  os.makedirs(clip_dir, exist_ok=True)
  with open(mark, "w", encoding="utf-8"):
    pass
  return clip_dir


def build(output_dir, *, seed=0, num_clips=4800, eval_fraction=0.2, examples_per_shard=128,
          num_workers=2, keep_clips=False, quiet=False):
  """Writes the demo set to output_dir; returns its dataset_info."""
  if num_clips < 2 or not 0 < eval_fraction < 1:
    raise ValueError(f"need num_clips >= 2 and 0 < eval_fraction < 1, got {num_clips}, "
                     f"{eval_fraction}")
  start = time.monotonic()
  clip_dir = _staging_dir(output_dir)
  versions = demo_sources.check_packages()
  rng = np.random.default_rng([seed, 0])
  sources = collect_sources(SAMPLE_RATE, seed)
  by_split = split_sources(sources, eval_fraction, rng)
  class_names = [name for _, name in demo_sources.CLASSES]
  index_of = {name: i for i, name in enumerate(class_names)}
  classes = [{"index": i, "id": cid, "display_name": name}
             for i, (cid, name) in enumerate(demo_sources.CLASSES)]

  n_eval = max(1, int(round(eval_fraction * num_clips)))
  entries = {}
  for split, count in (("train", num_clips - n_eval), ("eval", n_eval)):
    pool = by_split[split]
    by_label = {name: [s for s in pool if s.label == name] for name in class_names}
    backgrounds = [s for s in pool if s.label == demo_sources.BACKGROUND]
    for k in range(count):
      audio, labels, events, _ = demo_mixing.mix_clip(by_label, backgrounds, class_names, rng)
      path = os.path.join(clip_dir, f"{split}-{k:05d}.wav")
      with open(path, "wb") as clip_file:
        clip_file.write(audio_io.encode_wav(audio, SAMPLE_RATE))
      entries.setdefault(split, []).append(manifests.Entry(
          f"demo-{split}-{k:05d}", tuple(index_of[name] for name in labels), path, path,
          events=tuple((index_of[name], start_s, end_s) for name, start_s, end_s in events)))
  mixed_s = time.monotonic() - start

  extra = {"demo": {
      "generator": "train.data.demo.demo_data", "seed": seed, "num_clips": num_clips,
      "eval_fraction": eval_fraction, "packages": versions, "strong_labels": True,
      "sources": {split: sorted(s.name for s in pool) for split, pool in by_split.items()},
  }}
  info = prepare_data.prepare(entries, classes, output_dir, sample_rate=SAMPLE_RATE,
                              examples_per_shard=examples_per_shard, num_workers=num_workers,
                              seed=seed, extra_info=extra, quiet=quiet)
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
