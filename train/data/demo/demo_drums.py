"""Drum sources for the demo set: real sampled kits (hydrogen-drumkits) and General MIDI kits, played.

A pattern is a bar-based groove on a 16th-note grid (kick, snare on the back beat, hi-hats, the odd
tom fill and crash) at a random tempo, as (time_s, piece, velocity) hits. Real kits are mixed from
their samples in numpy; GM kits are rendered with fluidsynth on the percussion channel of every
demo soundfont. Each rendered pattern is one `demo_sources.Source` labelled "Drum".
"""
import concurrent.futures
import os
import re

import numpy as np

from train.data.demo import demo_sources

HYDROGEN_DIR = "/usr/share/hydrogen/data/drumkits"
# Kits of drum-set pieces (claps / hand-percussion kits would blur the class).
HYDROGEN_KITS = ("Audiophob", "BJA_Pacific", "ColomboAcousticDrumkit", "ElectricEmpireKit",
                 "ForzeeStereo", "HardElectro1", "Millo-Drums_v.1", "Millo_MultiLayered2",
                 "Millo_MultiLayered3", "The Black Pearl 1.0", "VariBreaks", "rumpf_kit_z01_h2")
PIECES = ("kick", "snare", "hihat", "tom", "cymbal")
# Sample-name patterns per piece (first match wins), for the names these kits use.
_PIECE_PATTERNS = (
    ("kick", r"kick|bass.?drum|(^|[^a-z])(bd|kd)([^a-z]|$)"),
    ("snare", r"snare|rimshot|(^|[^a-z])(sn|sd)\d*([^a-z]|$)"),
    ("hihat", r"hi.?hat|hat|(^|[^a-z])(hh|chh|ohh)\d*([^a-z]|$)"),
    ("tom", r"tom|(^|[^a-z])tm\d*([^a-z]|$)"),
    ("cymbal", r"crash|ride|cymbal|china|splash|(^|[^a-z])(rd|cy)\d*([^a-z]|$)"),
)
# General MIDI percussion notes per piece, and GS drum-kit programs on channel 10.
_GM_NOTES = {"kick": (35, 36), "snare": (38, 40), "hihat": (42, 44, 46), "tom": (45, 47, 48, 50),
             "cymbal": (49, 51, 57)}
_GM_KITS = (0, 8, 16, 24, 25, 32, 40)
_AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff")


def piece_of(file_name: str):
  """'PearlSnare-Hard.wav' -> 'snare'; None for pieces a groove does not use (cowbell, clap)."""
  stem = os.path.splitext(file_name)[0].lower()
  return next((piece for piece, pattern in _PIECE_PATTERNS if re.search(pattern, stem)), None)


def pattern(rng: np.random.Generator, seconds: float):
  """[(time_s, piece, velocity 0-1)] of a groove filling `seconds`; every piece name in PIECES."""
  step_s = 60.0 / float(rng.uniform(70, 160)) / 4          # a 16th note
  hat_every = int(rng.choice([1, 2, 2, 4]))
  kicks = {0, 8} | {int(s) for s in rng.choice(16, int(rng.integers(0, 3)), replace=False)}
  hits, step = [], 0
  while step * step_s < seconds:
    position = step % 16
    bar_end = position >= 12 and rng.random() < 0.15      # a fill at the end of some bars
    if position in kicks:
      hits.append((step * step_s, "kick", float(rng.uniform(0.7, 1.0))))
    if position in (4, 12):
      hits.append((step * step_s, "snare", float(rng.uniform(0.7, 1.0))))
    if bar_end:
      hits.append((step * step_s, "tom", float(rng.uniform(0.5, 1.0))))
    elif position % hat_every == 0:
      hits.append((step * step_s, "hihat", float(rng.uniform(0.3, 0.7))))
    if position == 0 and rng.random() < 0.2:
      hits.append((step * step_s, "cymbal", float(rng.uniform(0.5, 0.9))))
    step += 1
  return hits


def _load_kit(kit, sample_rate, rng):
  """{piece: [float32 audio]} of up to 3 samples per piece."""
  folder = os.path.join(HYDROGEN_DIR, kit)
  by_piece = {}
  for name in sorted(os.listdir(folder)):
    piece = piece_of(name)
    if piece and name.lower().endswith(_AUDIO_EXTENSIONS):
      by_piece.setdefault(piece, []).append(name)
  kit_samples = {}
  for piece, names in by_piece.items():
    chosen = rng.choice(len(names), min(3, len(names)), replace=False)
    audios = [demo_sources.load_tidy(folder, names[i], sample_rate) for i in sorted(chosen)]
    kit_samples[piece] = [a for a in audios if a.size]
  return {piece: audios for piece, audios in kit_samples.items() if audios}


def play(hits, kit_samples, sample_rate, rng):
  """Mixes a pattern from a kit's samples (pieces the kit lacks are left out)."""
  tails = max(a.size for audios in kit_samples.values() for a in audios)
  out = np.zeros(int(hits[-1][0] * sample_rate) + tails, np.float64) if hits else np.zeros(0)
  for time_s, piece, velocity in hits:
    if piece in kit_samples:
      audio = kit_samples[piece][int(rng.integers(len(kit_samples[piece])))]
      start = int(time_s * sample_rate)
      out[start:start + audio.size] += velocity * audio
  return demo_sources.tidy(out.astype(np.float32))


def hydrogen_sources(sample_rate, rng, per_kit=4):
  sources = []
  for kit in HYDROGEN_KITS:
    if not os.path.isdir(os.path.join(HYDROGEN_DIR, kit)):
      continue
    kit_samples = _load_kit(kit, sample_rate, rng)
    if "kick" not in kit_samples and "snare" not in kit_samples:
      continue
    for k in range(per_kit):
      audio = play(pattern(rng, float(rng.uniform(3.0, 5.5))), kit_samples, sample_rate, rng)
      sources.append(demo_sources.Source(f"hydrogen/{kit}/{k}", "Drum", audio))
  return sources


def gm_kit_sources(sample_rate, rng, per_font=4):
  """Patterns on GM drum kits (a different kit program per pattern) of every demo soundfont."""
  jobs, names = [], []
  for font in demo_sources.SOUNDFONTS:
    for k in range(per_font):
      kit = int(rng.choice(_GM_KITS))
      notes = [(t, 0.1, int(rng.choice(_GM_NOTES[piece])), int(20 + 107 * v))
               for t, piece, v in pattern(rng, float(rng.uniform(3.0, 5.5)))]
      jobs.append((kit, [notes], font, sample_rate, 8.0, 9))
      names.append(f"fluidsynth-drums/{os.path.splitext(os.path.basename(font))[0]}/kit{kit}/{k}")
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    renders = list(pool.map(demo_sources.render_slots, jobs))
  return [demo_sources.Source(name, "Drum", audios[0])
          for name, audios in zip(names, renders) if audios[0].size]


def drum_sources(sample_rate: int, rng: np.random.Generator):
  return hydrogen_sources(sample_rate, rng) + gm_kit_sources(sample_rate, rng)
