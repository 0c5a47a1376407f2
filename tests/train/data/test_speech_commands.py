"""Speech Commands v0.02 data prep on a small tree in the release's layout (made here)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from tests.harness import REPO
from train.data import speech_commands

# word -> tone (Hz) its clips carry, so that a model can tell them apart in a few steps
TREE_WORDS = {"yes": 500.0, "no": 1300.0, "up": 3100.0}
SPEAKERS = ("0a7c2a8d", "1b4c9b89", "2c5d0e11", "3d6e1f22", "4e7f2a33", "5f8a3b44")
VALIDATION_SPEAKERS = SPEAKERS[4:5]
TEST_SPEAKERS = SPEAKERS[5:]


def write_tree(root, words=TREE_WORDS, speakers=SPEAKERS, seed=0) -> dict:
  """A Speech Commands v0.02 folder: DIR/<word>/<speaker>_nohash_<n>.wav (16 kHz 16-bit, 1 s, a
  few shorter as in the release), the two list files (by speaker, as the release splits),
  _background_noise_/ and the top-level files. -> {split: sorted clip ids}."""
  rng = np.random.default_rng(seed)
  splits = {"train": [], "validation": [], "test": []}
  for word, tone_hz in words.items():
    os.makedirs(os.path.join(root, word))
    for speaker in speakers:
      for n in range(2):
        seconds = 1.0 if n == 0 else 0.8
        t = np.arange(int(seconds * 16000)) / 16000
        audio = 0.3 * np.sin(2 * np.pi * tone_hz * t) + 0.02 * rng.standard_normal(t.shape)
        clip_id = f"{word}/{speaker}_nohash_{n}.wav"
        soundfile.write(os.path.join(root, clip_id), audio, 16000, subtype="PCM_16")
        split = ("validation" if speaker in VALIDATION_SPEAKERS
                 else "test" if speaker in TEST_SPEAKERS else "train")
        splits[split].append(clip_id)
  for split, list_name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
    with open(os.path.join(root, list_name), "w", encoding="utf-8") as f:
      f.write("".join(f"{clip_id}\n" for clip_id in splits[split]))
  os.makedirs(os.path.join(root, "_background_noise_"))
  soundfile.write(os.path.join(root, "_background_noise_", "white_noise.wav"),
                  0.1 * rng.standard_normal(3 * 16000), 16000, subtype="PCM_16")
  with open(os.path.join(root, "_background_noise_", "README.md"), "w") as f:
    f.write("noise\n")
  for name in ("LICENSE", "README.md"):
    with open(os.path.join(root, name), "w") as f:
      f.write("not audio\n")
  return {split: sorted(ids) for split, ids in splits.items()}


def prepare_command(root, output_dir, *extra):
  return [sys.executable, "-m", "train.data.prepare_data", f"--speech_commands={root}",
          f"--output_dir={output_dir}", "--num_workers=1", *extra]


def test_label_map_is_the_35_words_of_v002_in_alphabetical_order():
  classes = speech_commands.classes()
  assert len(classes) == 35 == len(set(c["id"] for c in classes))
  assert [c["id"] for c in classes] == sorted(c["id"] for c in classes)
  assert [c["index"] for c in classes] == list(range(35))
  assert {"yes", "no", "marvin", "sheila", "backward", "forward", "follow", "learn",
          "visual"} <= {c["id"] for c in classes}


def test_read_splits_by_the_lists_and_labels_by_the_folder(tmp_path):
  expected = write_tree(str(tmp_path))
  entries, skipped = speech_commands.read(str(tmp_path))
  assert skipped == {"train": [], "validation": [], "test": []}
  for split, ids in expected.items():
    assert [e.id for e in entries[split]] == ids
    for entry in entries[split]:
      word = entry.id.split("/")[0]
      assert entry.labels == (speech_commands.WORDS.index(word),)
      assert entry.source == os.path.join(str(tmp_path), entry.id)
  read_ids = [e.id for split in entries.values() for e in split]
  assert not any(i.startswith("_background_noise_") for i in read_ids)


@pytest.mark.parametrize("damage, message", [
    (lambda root: os.remove(os.path.join(root, "testing_list.txt")),
     "testing_list.txt is missing"),
    (lambda root: os.remove(os.path.join(root, "validation_list.txt")),
     "validation_list.txt is missing"),
    (lambda root: os.makedirs(os.path.join(root, "maybe")),
     r"folder\(s\) \['maybe'\] are not Speech Commands"),
    (lambda root: open(os.path.join(root, "testing_list.txt"), "a").write(
        open(os.path.join(root, "validation_list.txt")).readline()),
     r"'yes/4e7f2a33_nohash_0.wav' is in both validation_list.txt and testing_list.txt"),
    (lambda root: open(os.path.join(root, "testing_list.txt"), "a").write(
        "yes/ffffffff_nohash_0.wav\n"),
     r"testing_list.txt:7: 'yes/ffffffff_nohash_0.wav' is not a file"),
    (lambda root: open(os.path.join(root, "validation_list.txt"), "a").write("LICENSE\n"),
     r"validation_list.txt: 'LICENSE' is not a WAV file in a word folder"),
])
def test_a_release_that_is_not_the_layout_is_an_error_naming_it(tmp_path, damage, message):
  write_tree(str(tmp_path))
  damage(str(tmp_path))
  with pytest.raises(ValueError, match=message):
    speech_commands.read(str(tmp_path))


def test_prepare_data_writes_the_three_splits_and_the_label_map(tmp_path):
  root, out = tmp_path / "speech_commands_v0.02", tmp_path / "out"
  expected = write_tree(str(root))
  proc = subprocess.run(prepare_command(root, out), cwd=REPO, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  info = json.loads((out / "dataset_info.json").read_text())
  assert info["classes"] == speech_commands.classes()
  assert info["sample_rate"] == 16000 and info["skipped"] == []
  assert {split: s["num_examples"] for split, s in info["splits"].items()} == {
      split: len(ids) for split, ids in expected.items()}


def test_prepare_data_names_a_missing_list_file_and_refuses_a_label_map(tmp_path):
  root = tmp_path / "sc"
  write_tree(str(root), words={"yes": 500.0}, speakers=SPEAKERS[:1])
  (root / "validation_list.txt").unlink()
  proc = subprocess.run(prepare_command(root, tmp_path / "out"), cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 1
  assert (f"data prep failed: --speech_commands {root}: validation_list.txt is missing"
          in proc.stderr)
  assert not (tmp_path / "out").exists()
  proc = subprocess.run(prepare_command(root, tmp_path / "out", "--label_map=labels.csv"),
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and "without" in proc.stderr and "--label_map" in proc.stderr
