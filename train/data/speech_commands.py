"""Speech Commands v0.02 (Warden 2018) in its release layout -> data prep's entries and classes.

    DIR/<word>/<speaker>_nohash_<n>.wav     one folder per word, 35 words, 1 s 16 kHz clips
    DIR/validation_list.txt                 paths relative to DIR, one a line: the validation split
    DIR/testing_list.txt                    the same for the test split
    DIR/_background_noise_/                 long noise recordings: not read (they have no word)

Every clip not in a list is in the train split. The label map is the 35 words in alphabetical
order (index 0 `backward` ... 34 `zero`); a clip's id is its path relative to DIR
(`yes/0a7c2a8d_nohash_0.wav`). Policy: the layout is the release's or prep stops with an error
naming what is wrong: a missing list file, a folder that is not one of the 35 words, a clip
listed in both lists, a listed clip that is not there. A word may have no folder (a subset of
the release). Other files at the top (LICENSE, README.md, ...) and non-WAV files in word folders
are not audio of the release and are not read; bad audio in a word folder is skipped and counted
by data prep like any input.
"""
import os

from train.data import manifests

WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
         "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on",
         "one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up",
         "visual", "wow", "yes", "zero")
LIST_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}
BACKGROUND_NOISE_DIR = "_background_noise_"


def classes() -> list:
  """The label map: [{"index", "id", "display_name"}] of the 35 words."""
  return [{"index": i, "id": word, "display_name": word} for i, word in enumerate(WORDS)]


def _read_list(root: str, split: str) -> list:
  path = os.path.join(root, LIST_FILES[split])
  if not os.path.isfile(path):
    raise ValueError(f"--speech_commands {root}: {LIST_FILES[split]} is missing (the release "
                     f"lists its {split} clips there)")
  with open(path, encoding="utf-8") as f:
    names = [line.strip() for line in f if line.strip()]
  for line_no, name in enumerate(names, 1):
    if not os.path.isfile(os.path.join(root, name)):
      raise ValueError(f"{path}:{line_no}: {name!r} is not a file under {root}")
  return names


def read(root: str):
  """-> ({"train" | "validation" | "test": [manifests.Entry]}, {split: []}) of the release in
  `root`, each split sorted by id. Raises ValueError naming the bad folder, file or line."""
  if not os.path.isdir(root):
    raise ValueError(f"--speech_commands {root!r} is not a folder")
  split_of = {}
  for split in LIST_FILES:
    for name in _read_list(root, split):
      if name in split_of:
        raise ValueError(f"--speech_commands {root}: {name!r} is in both "
                         f"{LIST_FILES[split_of[name]]} and {LIST_FILES[split]}")
      word = name.split("/")[0]
      if word not in WORDS or not name.lower().endswith(".wav") or name.count("/") != 1:
        raise ValueError(f"{os.path.join(root, LIST_FILES[split])}: {name!r} is not a WAV file "
                         "in a word folder")
      split_of[name] = split
  folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
  unknown = [d for d in folders if d not in WORDS and d != BACKGROUND_NOISE_DIR]
  if unknown:
    raise ValueError(f"--speech_commands {root}: folder(s) {unknown} are not Speech Commands "
                     "v0.02 words (expected the 35 words and _background_noise_)")
  entries = {"train": [], "validation": [], "test": []}
  for word in (d for d in folders if d in WORDS):
    for file_name in sorted(os.listdir(os.path.join(root, word))):
      if not file_name.lower().endswith(".wav"):
        continue
      clip_id = f"{word}/{file_name}"
      path = os.path.join(root, word, file_name)
      entries[split_of.get(clip_id, "train")].append(
          manifests.Entry(clip_id, (WORDS.index(word),), path, path))
  return entries, {split: [] for split in entries}
