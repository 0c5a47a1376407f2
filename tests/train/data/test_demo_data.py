"""demo_data / demo_sources: mixing rules, MIDI writer, source split, and a deterministic build."""
import glob
import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from train.data import input_pipeline, tfrecords
from train.data.demo import demo_data, demo_drums, demo_mixing, demo_sources

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NAMES = [name for _, name in demo_sources.CLASSES]


def _fake_sources(rng):
  sources = []
  for label in NAMES + [demo_sources.BACKGROUND]:
    for k in range(6):
      seconds = [0.3, 1.5, 7.0][k % 3]                 # short one-shots, events, long beds
      audio = rng.uniform(-1, 1, int(seconds * 16000)).astype(np.float32)
      sources.append(demo_sources.Source(f"{label}/{k}", label, audio))
  return sources


def test_split_sources_puts_each_source_in_one_split_and_every_label_in_all_three():
  rng = np.random.default_rng(0)
  sources = _fake_sources(rng)
  split = demo_data.split_sources(sources, {"validation": 0.2, "test": 0.4}, rng)
  names = {name: {s.name for s in split[name]} for name in ("train", "validation", "test")}
  assert sum(len(v) for v in names.values()) == len(sources)
  assert len(set.union(*names.values())) == len(sources)              # disjoint
  for label in NAMES + [demo_sources.BACKGROUND]:
    counts = {name: sum(s.label == label for s in split[name]) for name in names}
    assert counts == {"train": 3, "validation": 1, "test": 2}         # round(0.2 * 6), round(0.4 * 6)
  with pytest.raises(ValueError, match="2 speech sources cannot feed train and"):
    demo_data.split_sources([demo_sources.Source(f"speech/{k}", "speech", np.zeros(8))
                             for k in range(2)], {"validation": 0.2, "test": 0.2}, rng)


def test_mix_clip_lengths_labels_events_and_level():
  rng = np.random.default_rng(1)
  sources = _fake_sources(rng)
  by_label = {n: [s for s in sources if s.label == n] for n in NAMES}
  backgrounds = [s for s in sources if s.label == demo_sources.BACKGROUND]
  counts = np.zeros(3)
  for _ in range(200):
    audio, labels, events, used = demo_mixing.mix_clip(by_label, backgrounds, NAMES, rng)
    assert 2 * 16000 <= audio.size <= 5 * 16000 and audio.dtype == np.float32
    assert 0.3 - 1e-6 <= np.max(np.abs(audio)) <= 0.9 + 1e-6
    assert labels == sorted(set(labels)) and set(labels) <= set(NAMES)
    counts[len(labels) - 1] += 1
    assert {label for label, _, _ in events} == set(labels)     # every class is audible somewhere
    for _, start_s, end_s in events:
      assert 0 <= start_s < end_s <= audio.size / 16000 + 1e-9
    for name in used:                           # every event comes from a labelled class or a bed
      assert name.split("/")[0] in labels + [demo_sources.BACKGROUND]
  assert counts.min() > 20                      # 1, 2 and 3 labels all occur


def test_audible_spans_follow_the_signal():
  track = np.zeros(16000 * 3)
  track[8000:16000] = np.sin(np.arange(8000) * 0.3)           # 0.5-1.0 s
  track[16000 + 1000:16000 + 3000] = 0.5                       # 1.0625-1.1875 s: merged (gap < 0.25 s)
  track[40000:40400] = 0.2                                     # 2.5-2.525 s: its own span
  spans = [(s / 16000, e / 16000) for s, e in demo_mixing.audible_spans(track)]
  assert len(spans) == 2
  assert spans[0][0] == pytest.approx(0.5, abs=0.011) and spans[0][1] == pytest.approx(1.1875, abs=0.011)
  assert spans[1][0] == pytest.approx(2.5, abs=0.011) and spans[1][1] == pytest.approx(2.525, abs=0.011)


def test_pink_noise_has_equal_power_per_octave():
  noise = demo_mixing.coloured_noise(2 ** 16 + 17, 1.0, np.random.default_rng(2))
  assert noise.size == 2 ** 16 + 17 and np.isclose(np.max(np.abs(noise)), 1.0)
  power = np.abs(np.fft.rfft(noise)) ** 2
  freqs = np.fft.rfftfreq(noise.size, 1 / 16000)
  band = lambda lo: power[(freqs >= lo) & (freqs < 2 * lo)].sum()
  ratio = band(4000) / band(100)
  assert 0.7 < ratio < 1.4, ratio               # white noise would give ~40


def test_drum_piece_names_and_patterns():
  assert demo_drums.piece_of("PearlSnare-Hard.wav") == "snare"
  assert demo_drums.piece_of("BD_03.aiff") == "kick"
  assert demo_drums.piece_of("hihat-closed-4.flac") == "hihat"
  assert demo_drums.piece_of("TM2_01.aiff") == "tom"
  assert demo_drums.piece_of("crash20i__ride4.flac") == "cymbal"
  assert demo_drums.piece_of("Cowbell-Hard.wav") is None
  hits = demo_drums.pattern(np.random.default_rng(0), 4.0)
  assert {piece for _, piece, _ in hits} >= {"kick", "snare", "hihat"}
  assert all(0 <= t < 4.0 and 0 < v <= 1 for t, _, v in hits)


def _parse_midi(data):
  assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
  assert data[14:18] == b"MTrk"
  track = data[22:22 + struct.unpack(">I", data[18:22])[0]]
  events, pos, now = [], 0, 0
  while pos < len(track):
    delta = 0
    while True:
      byte = track[pos]
      pos += 1
      delta = (delta << 7) | (byte & 0x7F)
      if byte < 0x80:
        break
    now += delta
    status = track[pos]
    size = {0xC0: 2, 0x90: 3, 0x80: 3}.get(status & 0xF0, 3)
    events.append((now, track[pos:pos + size]))
    pos += size
  return events


def test_midi_file_round_trips():
  notes = [(0.0, 0.5, 60, 100), (0.25, 1.0, 64, 90), (200.0, 0.1, 67, 80)]   # 200 s: 4-byte VLQ
  events = _parse_midi(demo_sources.midi_file(notes, program=40))
  assert events[0] == (0, bytes([0xC0, 40]))
  ons = [(t / 960, e[1], e[2]) for t, e in events if e[:1] == b"\x90"]
  offs = [(t / 960, e[1]) for t, e in events if e[:1] == b"\x80"]
  assert ons == [(0.0, 60, 100), (0.25, 64, 90), (200.0, 67, 80)]
  assert offs == [(0.5, 60), (1.25, 64), (200.1, 67)]
  assert events[-1] == (round(200.1 * 960) + 960, b"\xff\x2f\x00")


def test_missing_packages_are_named(monkeypatch):
  monkeypatch.setattr(demo_sources, "PACKAGES", ("no-such-package-xyz",))
  with pytest.raises(RuntimeError, match="no-such-package-xyz.*scripts/setup.sh"):
    demo_sources.check_packages()


def _hashes(directory):
  return {os.path.basename(p): hashlib.sha1(open(p, "rb").read()).hexdigest()
          for p in sorted(glob.glob(os.path.join(directory, "*")))}


@pytest.mark.slow
def test_demo_build_is_deterministic_across_processes_and_split_by_source(tmp_path):
  args = dict(seed=5, num_clips=60, examples_per_shard=16)
  info = demo_data.build(str(tmp_path / "a"), num_workers=2, quiet=True, **args)
  result = subprocess.run(
      [sys.executable, "-m", "train.data.demo.demo_data", f"--output_dir={tmp_path / 'b'}", "--seed=5",
       "--num_clips=60", "--examples_per_shard=16", "--num_workers=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")        # same bytes, other process
  assert not os.path.exists(tmp_path / "a" / "clips")

  assert len(info["classes"]) >= 8 and info["sample_rate"] == 16000 and info["skipped"] == []
  assert {s: v["num_examples"] for s, v in info["splits"].items()} == {
      "train": 44, "validation": 5, "test": 11}                       # 60 x (1 - 3/11, 1/11, 2/11)
  assert set(info["demo"]["packages"]) == set(demo_sources.PACKAGES)
  sources = info["demo"]["sources"]
  assert not set(sources["train"]) & set(sources["test"])
  assert not set(sources["train"]) & set(sources["validation"])
  assert not set(sources["validation"]) & set(sources["test"])
  assert {n.split("/")[0] for n in sources["train"]} == {
      "sonic-pi", "espeak", "flite", "fluidsynth", "fluidsynth-drums", "hydrogen"}
  for split in ("train", "validation", "test"):
    for name in info["splits"][split]["files"]:
      for record in tf.data.TFRecordDataset(str(tmp_path / "a" / name)):
        example = tfrecords.parse_example(record)
        audio, rate = tf.audio.decode_wav(example["audio"])
        assert int(rate) == 16000 and 2 * 16000 <= audio.shape[0] <= 5 * 16000
        assert 1 <= example["labels"].shape[0] <= 3
        assert set(example["event_labels"].numpy()) == set(example["labels"].numpy())
  batch = next(iter(input_pipeline.make_dataset(str(tmp_path / "a"), "test", batch_size=11,
                                                crop_seconds=2.0, mode="eval")))
  assert batch["audio"].shape == (11, 32000) and batch["labels"].shape == (11, len(info["classes"]))
  with open(tmp_path / "a" / "dataset_info.json") as f:
    assert json.load(f)["demo"]["seed"] == 5


def test_track_levels_are_set_by_sounding_rms_not_peak():
  """A sparse click track and a steady tone at equal sounding RMS: the clicks' peak is far higher."""
  clicks = np.zeros(16000)
  clicks[::4000] = 1.0
  tone = np.zeros(16000)
  tone[4000:12000] = np.sin(np.arange(8000) * 0.3)              # silent outside 0.25-0.75 s
  np.testing.assert_allclose(demo_mixing._sounding_rms(tone), np.sqrt(0.5), rtol=1e-3)
  np.testing.assert_allclose(demo_mixing._sounding_rms(clicks), 1.0, rtol=1e-9)


def test_a_clips_folder_the_builder_did_not_write_is_refused_and_kept(tmp_path):
  mine = tmp_path / "out" / "clips" / "mine.wav"
  mine.parent.mkdir(parents=True)
  mine.write_bytes(b"user data")
  with pytest.raises(ValueError, match=r"out/clips exists and was not written by the demo builder"):
    demo_data.build(str(tmp_path / "out"), num_clips=4, quiet=True)
  assert mine.read_bytes() == b"user data"
