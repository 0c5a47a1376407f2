"""Source recordings for the demo set, from Debian packages (real where they exist, synthesized else).

  sonic-pi-samples     real CC0 one-shots and loops: drums, tabla, guitar, bells; ambience beds
  espeak-ng            speech: many voices / accents, speeds, pitches
  fluidsynth + timgm6mb-soundfont   instrument phrases: piano, violin, trumpet, flute, guitar, bells

Each `Source` is one source recording: the demo never puts one source in both splits. All audio is
float32 mono at the requested rate, peak-normalised, leading / trailing silence trimmed. Everything
here is deterministic for a seed (no dither: fluidsynth renders float).
"""
import concurrent.futures
import dataclasses
import os
import struct
import subprocess
import tempfile

import numpy as np

from train import audio_io

SONIC_PI_DIR = "/usr/share/sonic-pi/samples"
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
PACKAGES = ("sonic-pi-samples", "espeak-ng", "fluidsynth", "timgm6mb-soundfont")

# (id, display name): AudioSet's ontology ids and names for the same sounds.
CLASSES = (
    ("/m/09x0r", "Speech"), ("/m/05r5c", "Piano"), ("/m/07y_7", "Violin, fiddle"),
    ("/m/07gql", "Trumpet"), ("/m/0l14j_", "Flute"), ("/m/0342h", "Guitar"),
    ("/m/026t6", "Drum"), ("/m/01p970", "Tabla"), ("/m/0395lw", "Bell"),
)
BACKGROUND = "background"      # unlabelled beds

# sonic-pi sample name prefixes -> class display name (first match wins; others unused).
_SONIC_PI_RULES = (
    ("tabla_", "Tabla"), ("loop_tabla", "Tabla"),
    ("bd_", "Drum"), ("drum_", "Drum"), ("sn_", "Drum"), ("elec_hi_snare", "Drum"),
    ("elec_lo_snare", "Drum"), ("elec_mid_snare", "Drum"), ("elec_snare", "Drum"),
    ("elec_filt_snare", "Drum"), ("elec_soft_kick", "Drum"), ("elec_hollow_kick", "Drum"),
    ("loop_amen", "Drum"), ("loop_breakbeat", "Drum"),
    ("guit_", "Guitar"), ("ambi_piano", "Piano"),
    ("perc_bell", "Bell"), ("elec_bell", "Bell"), ("elec_chime", "Bell"),
    ("vinyl_hiss", BACKGROUND), ("ambi_drone", BACKGROUND), ("ambi_dark_woosh", BACKGROUND),
    ("ambi_soft_buzz", BACKGROUND), ("ambi_glass_hum", BACKGROUND),
    ("ambi_haunted_hum", BACKGROUND), ("ambi_lunar_land", BACKGROUND), ("ambi_sauna", BACKGROUND),
    ("loop_3d_printer", BACKGROUND),
)
# General MIDI programs per class, with a playable pitch range.
_GM_PROGRAMS = {
    "Piano": ((0, 40, 84), (1, 40, 84)), "Violin, fiddle": ((40, 55, 88), (110, 55, 84)),
    "Trumpet": ((56, 55, 82), (59, 55, 80)), "Flute": ((73, 60, 93), (72, 74, 96)),
    "Guitar": ((24, 40, 76), (25, 40, 76), (27, 40, 76)), "Bell": ((14, 55, 79), (112, 60, 90)),
}
_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-us-nyc", "de", "fr-fr", "es", "it",
           "pt-br", "nl", "sv", "pl", "ru", "hi", "cmn")
_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A learnable frontend replaces the fixed mel filterbank.",
    "It is nine thirty in the morning and the train is late again.",
    "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
    "We will meet at the old bridge after the concert tonight.",
    "How many audio clips does the evaluation set contain?",
    "Turn left at the second light, then keep going for two miles.",
)


@dataclasses.dataclass
class Source:
  name: str                    # unique, e.g. "sonic-pi/tabla_na" or "espeak/fr-fr/3"
  label: str                   # class display name or BACKGROUND
  audio: np.ndarray            # float32 [samples], peak 1


def check_packages() -> dict:
  """{package: version}; raises RuntimeError naming what is missing and how to install it."""
  versions, missing = {}, []
  for package in PACKAGES:
    try:
      out = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package],
                           capture_output=True, text=True, check=False).stdout.split()
    except FileNotFoundError:
      out = []
    if len(out) >= 4 and out[2] == "installed":
      versions[package] = out[3]
    else:
      missing.append(package)
  if missing:
    raise RuntimeError(f"demo data needs the Debian packages {', '.join(missing)}: run "
                       f"scripts/setup.sh (or apt-get install {' '.join(missing)})")
  return versions


def _tidy(audio: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
  """Trims leading / trailing near-silence and normalises the peak to 1."""
  peak = float(np.max(np.abs(audio))) if audio.size else 0.0
  if peak <= 0:
    return audio[:0]
  loud = np.flatnonzero(np.abs(audio) > threshold * peak)
  audio = audio[loud[0]:loud[-1] + 1]
  return (audio / peak).astype(np.float32)


def sonic_pi_sources(sample_rate: int):
  sources = []
  for name in sorted(os.listdir(SONIC_PI_DIR)):
    stem, ext = os.path.splitext(name)
    label = next((lab for prefix, lab in _SONIC_PI_RULES if stem.startswith(prefix)), None)
    if label is None or ext not in (".flac", ".wav"):
      continue
    audio = _tidy(audio_io.load_clip(os.path.join(SONIC_PI_DIR, name), sample_rate))
    if audio.size > sample_rate // 20:
      sources.append(Source(f"sonic-pi/{stem}", label, audio))
  return sources


def _speak(args):
  voice, text, speed, pitch, sample_rate = args
  # --stdout streams a header whose data length is bogus (0x7ffff000): read what follows it.
  wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        text], capture_output=True, check=True).stdout
  samples, rate = audio_io.read_wav_ignoring_length(wav)
  return _tidy(audio_io.prepare_samples(samples, rate, sample_rate))


def espeak_sources(sample_rate: int, rng: np.random.Generator, per_voice: int = 3):
  jobs, names = [], []
  for voice in _VOICES:
    for k, t in enumerate(rng.choice(len(_TEXTS), per_voice, replace=False)):
      jobs.append((voice, _TEXTS[t], int(rng.integers(120, 200)), int(rng.integers(25, 75)),
                   sample_rate))
      names.append(f"espeak/{voice}/{k}")
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    audios = list(pool.map(_speak, jobs))
  return [Source(n, "Speech", a) for n, a in zip(names, audios) if a.size]


def _vlq(n: int) -> bytes:
  out = [n & 0x7F]
  n >>= 7
  while n:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  return bytes(reversed(out))


def midi_file(notes, program: int, ticks_per_second: int = 960) -> bytes:
  """Standard MIDI file (format 0, 120 bpm, 480 ticks/quarter) of (start_s, dur_s, pitch, vel)."""
  events = [(0, bytes([0xC0, program]))]
  for start, dur, pitch, vel in notes:
    events.append((round(start * ticks_per_second), bytes([0x90, pitch, vel])))
    events.append((round((start + dur) * ticks_per_second), bytes([0x80, pitch, 0])))
  events.sort(key=lambda e: (e[0], e[1][0] == 0x90))   # note-offs before note-ons at a tick
  track, now = b"", 0
  for tick, data in events:
    track += _vlq(tick - now) + data
    now = tick
  track += _vlq(ticks_per_second) + b"\xff\x2f\x00"      # one second of tail, end of track
  return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_second // 2)
          + b"MTrk" + struct.pack(">I", len(track)) + track)


_INTERVALS = ((0, 4, 7, 12), (0, 3, 7, 10), (0, 2, 4, 5, 7), (0, 5, 7, 12))


def _phrase(rng, low, high):
  """Notes of one short phrase (single note, arpeggio or chord), relative to its start."""
  kind, root = rng.integers(3), int(rng.integers(low, high - 7))
  intervals = _INTERVALS[int(rng.integers(len(_INTERVALS)))]
  vel = int(rng.integers(70, 120))
  if kind == 0:
    return [(0.0, float(rng.uniform(1.0, 2.5)), root, vel)]
  if kind == 1:
    step = float(rng.uniform(0.2, 0.5))
    return [(i * step, step * 1.5, root + iv, vel) for i, iv in enumerate(intervals)]
  return [(0.0, float(rng.uniform(1.0, 2.0)), root + iv, vel) for iv in intervals[:3]]


def _render(args):
  program, phrases, sample_rate, slot_s = args
  notes = [(k * slot_s + s, d, p, v) for k, phrase in enumerate(phrases) for s, d, p, v in phrase]
  with tempfile.TemporaryDirectory() as tmp:
    midi, raw = os.path.join(tmp, "in.mid"), os.path.join(tmp, "out.raw")
    with open(midi, "wb") as f:
      f.write(midi_file(notes, program))
    subprocess.run(["fluidsynth", "-ni", "-q", "-C", "0", "-g", "0.5", "-r", str(sample_rate),
                    "-O", "float", "-T", "raw", "-F", raw, SOUNDFONT, midi],
                   capture_output=True, check=True)
    audio = np.fromfile(raw, dtype="<f4").reshape(-1, 2).mean(axis=1)
  slot = int(slot_s * sample_rate)
  return [_tidy(audio[k * slot:(k + 1) * slot]) for k in range(len(phrases))]


def fluidsynth_sources(sample_rate: int, rng: np.random.Generator, per_program: int = 10):
  """One fluidsynth run per GM program; each phrase (a slot of the render) is one source."""
  jobs, names = [], []
  for label, programs in _GM_PROGRAMS.items():
    for program, low, high in programs:
      phrases = [_phrase(rng, low, high) for _ in range(per_program)]
      jobs.append((program, phrases, sample_rate, 4.0))
      names.append((label, program))
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    renders = list(pool.map(_render, jobs))
  return [Source(f"fluidsynth/gm{program:03d}/{k}", label, audio)
          for (label, program), audios in zip(names, renders)
          for k, audio in enumerate(audios) if audio.size]


def collect(sample_rate: int, seed: int):
  """All sources, sorted by name. Needs the PACKAGES (see check_packages)."""
  rng = np.random.default_rng([seed, 1])
  sources = sonic_pi_sources(sample_rate) + espeak_sources(sample_rate, rng)
  sources += fluidsynth_sources(sample_rate, rng)
  return sorted(sources, key=lambda s: s.name)
