r"""Builds the embedded demo set: AudioSet-style multi-label clips from Debian-packaged sounds, offline.

  python -m train.data.demo.demo_data --output_dir=/tmp/demo_data [--seed=0 --num_clips=5280]

9 classes (AudioSet ids and names: Speech, Piano, Violin, Trumpet, Flute, Guitar, Drum, Tabla, Bell),
clips of 2-5 s at 16 kHz with 1-3 classes each, mixed by train/data/demo/demo_mixing.py from real samples and
synthesized sources (train/data/demo/demo_sources.py, train/data/demo/demo_drums.py): many voices, drum kits, three
soundfonts, random EQ, reverb and backgrounds. Each source recording (a sample file, an utterance, a
phrase, a drum pattern) is assigned to exactly one split (train, validation or test), so no source is
heard in two splits: every choice (recipe, learning rate, best checkpoint) is made on validation,
and test is scored once per finished run.
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

from train import progress
from train.data import audio_io, manifests, prepare_data
from train.data.demo import demo_drums, demo_mixing, demo_sources

FLAGS = flags.FLAGS

STAGING_MARK = ".written_by_demo_data"
# 5280 clips: 3840 train, 480 validation, 960 test
VALIDATION_FRACTION, TEST_FRACTION = 1 / 11, 2 / 11
HELD_OUT = ("validation", "test")
SAMPLE_RATE = demo_mixing.SAMPLE_RATE


def define_flags():
  """Flags of the binary (only when run as one, so importing this module defines none)."""
  console.define_verbose_flag()
  flags.DEFINE_string("output_dir", None, "Where shards and dataset_info.json go.")
  flags.DEFINE_integer("seed", 0, "Seed: same seed and package versions give the same bytes.")
  flags.DEFINE_integer("num_clips", 5280, "Clips in train + validation + test.")
  flags.DEFINE_float("validation_fraction", VALIDATION_FRACTION,
                     "Share of clips (and of source recordings) in the validation split.")
  flags.DEFINE_float("test_fraction", TEST_FRACTION,
                     "Share of clips (and of source recordings) in the test split.")
  flags.DEFINE_integer("examples_per_shard", 128,
                       "Shard size (the demo's 5280 clips: 30 + 4 + 8 shards).")
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


def split_sources(sources, fractions, rng):
  """{"train": [...], "validation": [...], "test": [...]}: per label, a seeded share of its
  sources (`fractions[split]`, at least one) goes to each held-out split, the rest to train."""
  out = {"train": [], **{split: [] for split in HELD_OUT}}
  for label in sorted({s.label for s in sources}):
    group = [s for s in sources if s.label == label]
    if len(group) < len(HELD_OUT) + 1:
      raise ValueError(f"{len(group)} {label} sources cannot feed train and {HELD_OUT}")
    order = list(rng.permutation(len(group)))
    for split in HELD_OUT:
      count = min(max(1, int(round(fractions[split] * len(group)))), len(order) - 1)
      out[split] += [group[i] for i in order[:count]]
      del order[:count]
    out["train"] += [group[i] for i in order]
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


def build(output_dir, *, seed=0, num_clips=5280, validation_fraction=VALIDATION_FRACTION,
          test_fraction=TEST_FRACTION, examples_per_shard=128, num_workers=2, keep_clips=False,
          quiet=False):
  """Writes the demo set (train, validation, test) to output_dir; returns its dataset_info."""
  fractions = {"validation": validation_fraction, "test": test_fraction}
  if (num_clips < 3 or min(fractions.values()) <= 0
      or validation_fraction + test_fraction >= 1):
    raise ValueError(f"need --num_clips >= 3, --validation_fraction and --test_fraction > 0 "
                     f"with a sum < 1; got {num_clips}, {validation_fraction}, {test_fraction}")
  start = time.monotonic()
  clip_dir = _staging_dir(output_dir)
  versions = demo_sources.check_packages()
  rng = np.random.default_rng([seed, 0])
  sources = collect_sources(SAMPLE_RATE, seed)
  by_split = split_sources(sources, fractions, rng)
  class_names = [name for _, name in demo_sources.CLASSES]
  index_of = {name: i for i, name in enumerate(class_names)}
  classes = [{"index": i, "id": cid, "display_name": name}
             for i, (cid, name) in enumerate(demo_sources.CLASSES)]

  counts = {split: max(1, int(round(fractions[split] * num_clips))) for split in HELD_OUT}
  entries = {}
  bar = None if quiet else progress.Progress("demo set: mixing", num_clips, "clips")
  for split, count in (("train", num_clips - sum(counts.values())), *counts.items()):
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
      if bar:
        bar.update()
  if bar:
    bar.close()
  mixed_s = time.monotonic() - start

  extra = {"demo": {
      "generator": "train.data.demo.demo_data", "seed": seed, "num_clips": num_clips,
      "validation_fraction": validation_fraction, "test_fraction": test_fraction,
      "packages": versions, "strong_labels": True,
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
                 validation_fraction=FLAGS.validation_fraction,
                 test_fraction=FLAGS.test_fraction, examples_per_shard=FLAGS.examples_per_shard,
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
