"""Source recordings for the demo set, from Debian packages (real where they exist, synthesized else).

  sonic-pi-samples     real CC0 one-shots and loops: drums, tabla, guitar, bells; ambience beds
  hydrogen-drumkits    real acoustic and electronic drum kits, played as patterns (train/data/demo/demo_drums.py)
  espeak-ng, flite     speech: many voices / accents / variants, speeds, pitches, two synthesis methods
  fluidsynth + timgm6mb-soundfont, fluid-soundfont-gm, musescore-general-soundfont-small
                       instrument phrases over every General MIDI program of a class, three soundfonts;
                       GM drum kits played as patterns

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

from train.data import audio_io

SONIC_PI_DIR = "/usr/share/sonic-pi/samples"
SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
              "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
PACKAGES = ("sonic-pi-samples", "espeak-ng", "flite", "fluidsynth", "timgm6mb-soundfont",
            "fluid-soundfont-gm", "musescore-general-soundfont-small", "hydrogen-drumkits")

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
# Every General MIDI program of a class, each with a playable pitch range (low, high).
_GM_PROGRAMS = {
    "Piano": ((0, 36, 88), (1, 36, 88), (2, 36, 88), (3, 40, 84), (4, 40, 84), (5, 40, 84)),
    "Violin, fiddle": ((40, 55, 91), (110, 55, 86)),
    "Trumpet": ((56, 55, 82), (59, 55, 80)),
    "Flute": ((73, 60, 93), (72, 74, 100), (75, 60, 88)),
    "Guitar": tuple((p, 40, 79) for p in range(24, 32)),
    "Bell": ((14, 55, 79), (112, 60, 90), (9, 72, 100)),
}
_ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-us-nyc", "de", "fr-fr", "es",
                  "it", "pt-br", "nl", "sv", "pl", "ru", "hi", "cmn")
_ESPEAK_VARIANTS = ("", "+m1", "+m3", "+m5", "+f1", "+f2", "+f4", "+klatt", "+croak", "+whisper")
_FLITE_VOICES = ("kal16", "awb", "rms", "slt")
_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A learnable frontend replaces the fixed mel filterbank.",
    "It is nine thirty in the morning and the train is late again.",
    "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
    "We will meet at the old bridge after the concert tonight.",
    "How many audio clips does the evaluation set contain?",
    "Turn left at the second light, then keep going for two miles.",
    "My grandmother grew tomatoes, beans and sunflowers behind the house.",
    "Could you read the last paragraph once more, a little slower?",
    "The weather report promised rain, but the sky stayed clear all day.",
    "Nobody knew where the old map had come from or who had drawn it.",
    "Put the kettle on, the guests will be here in ten minutes.",
    "Thirty two thousand seven hundred and sixty eight samples make two seconds.",
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


def tidy(audio: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
  """Trims leading / trailing near-silence and normalises the peak to 1."""
  peak = float(np.max(np.abs(audio))) if audio.size else 0.0
  if peak <= 0:
    return audio[:0]
  loud = np.flatnonzero(np.abs(audio) > threshold * peak)
  audio = audio[loud[0]:loud[-1] + 1]
  return (audio / peak).astype(np.float32)


def load_tidy(folder: str, name: str, sample_rate: int) -> np.ndarray:
  """A recording of a Debian package's folder, decoded, resampled and tidied."""
  return tidy(audio_io.load_clip(os.path.join(folder, name), sample_rate))


def sonic_pi_sources(sample_rate: int):
  sources = []
  for name in sorted(os.listdir(SONIC_PI_DIR)):
    stem, ext = os.path.splitext(name)
    label = next((lab for prefix, lab in _SONIC_PI_RULES if stem.startswith(prefix)), None)
    if label is None or ext not in (".flac", ".wav"):
      continue
    audio = load_tidy(SONIC_PI_DIR, name, sample_rate)
    if audio.size > sample_rate // 20:
      sources.append(Source(f"sonic-pi/{stem}", label, audio))
  return sources


def _speak(args):
  engine, voice, text, speed, pitch, sample_rate = args
  if engine == "espeak":
    # --stdout streams a header whose data length is bogus (0x7ffff000): read what follows it.
    wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), "-p",
                          str(pitch), text], capture_output=True, check=True).stdout
    samples, rate = audio_io.read_wav_ignoring_length(wav)
  else:
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "speech.wav")
      # duration_stretch: >1 slower; int_f0_target_mean: the voice's mean pitch in Hz
      subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={speed}",
                      "--setf", f"int_f0_target_mean={pitch}", "-t", text, "-o", path],
                     capture_output=True, check=True)
      samples, rate = audio_io.decode(path)
  return tidy(audio_io.prepare_samples(samples, rate, sample_rate))


def speech_sources(sample_rate: int, rng: np.random.Generator, per_voice: int = 3):
  """espeak-ng voices x variants and flite voices, each speaking a few random sentences."""
  jobs, names = [], []
  for voice in _ESPEAK_VOICES:
    for k, t in enumerate(rng.choice(len(_TEXTS), per_voice, replace=False)):
      variant = _ESPEAK_VARIANTS[int(rng.integers(len(_ESPEAK_VARIANTS)))]
      jobs.append(("espeak", voice + variant, _TEXTS[t], int(rng.integers(120, 200)),
                   int(rng.integers(25, 75)), sample_rate))
      names.append(f"espeak/{voice}/{k}")
  for voice in _FLITE_VOICES:
    for k, t in enumerate(rng.choice(len(_TEXTS), 2 * per_voice, replace=False)):
      jobs.append(("flite", voice, _TEXTS[t], round(float(rng.uniform(0.8, 1.3)), 2),
                   int(rng.integers(90, 220)), sample_rate))
      names.append(f"flite/{voice}/{k}")
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


def midi_file(notes, program: int, ticks_per_second: int = 960, channel: int = 0) -> bytes:
  """Standard MIDI file (format 0, 120 bpm, 480 ticks/quarter) of (start_s, dur_s, pitch, vel).

  channel 9 is General MIDI's percussion channel: there `program` picks the drum kit.
  """
  events = [(0, bytes([0xC0 | channel, program]))]
  for start, dur, pitch, vel in notes:
    events.append((round(start * ticks_per_second), bytes([0x90 | channel, pitch, vel])))
    events.append((round((start + dur) * ticks_per_second), bytes([0x80 | channel, pitch, 0])))
  events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))   # note-offs before note-ons at a tick
  track, now = b"", 0
  for tick, data in events:
    track += _vlq(tick - now) + data
    now = tick
  track += _vlq(ticks_per_second) + b"\xff\x2f\x00"      # one second of tail, end of track
  return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_second // 2)
          + b"MTrk" + struct.pack(">I", len(track)) + track)


_INTERVALS = ((0, 4, 7, 12), (0, 3, 7, 10), (0, 2, 4, 5, 7), (0, 5, 7, 12), (0, 2, 3, 5, 7, 8))


def phrase(rng, low, high, seconds):
  """Notes of one phrase filling about `seconds`: a melody, arpeggios or chords, relative to 0."""
  kind, root = int(rng.integers(3)), int(rng.integers(low, max(low + 1, high - 12)))
  scale = _INTERVALS[int(rng.integers(len(_INTERVALS)))]
  vel, notes, t = int(rng.integers(60, 120)), [], 0.0
  while t < seconds:
    if kind == 0:                  # melody: scale steps of varied length
      dur = float(rng.choice([0.2, 0.3, 0.45, 0.6, 0.9]))
      pitch = root + scale[int(rng.integers(len(scale)))] + 12 * int(rng.integers(0, 2))
      notes.append((t, dur * 1.1, min(pitch, high), vel))
    elif kind == 1:                # arpeggio of the chord
      dur = float(rng.uniform(0.15, 0.4))
      for i, interval in enumerate(scale[:4]):
        notes.append((t + i * dur, dur * 1.5, root + interval, vel))
      dur *= 4
    else:                          # held chords
      dur = float(rng.uniform(0.8, 1.6))
      notes.extend((t, dur, root + interval, vel) for interval in scale[:3])
      root = int(np.clip(root + rng.integers(-5, 6), low, high - 7))
    t += dur
  return notes


def render_midi(notes, program, soundfont, sample_rate, channel=0):
  """fluidsynth (offline, no reverb / chorus) -> float32 mono [samples]."""
  with tempfile.TemporaryDirectory() as tmp:
    midi, raw = os.path.join(tmp, "in.mid"), os.path.join(tmp, "out.raw")
    with open(midi, "wb") as f:
      f.write(midi_file(notes, program, channel=channel))
    subprocess.run(["fluidsynth", "-ni", "-q", "-C", "0", "-R", "0", "-g", "0.5", "-r",
                    str(sample_rate), "-O", "float", "-T", "raw", "-F", raw, soundfont, midi],
                   capture_output=True, check=True)
    return np.fromfile(raw, dtype="<f4").reshape(-1, 2).mean(axis=1)


def render_slots(args):
  """One fluidsynth run of several phrases, each in its own slot -> [tidy audio per phrase]."""
  program, phrases, soundfont, sample_rate, slot_s, channel = args
  notes = [(k * slot_s + s, d, p, v) for k, notes in enumerate(phrases) for s, d, p, v in notes]
  audio = render_midi(notes, program, soundfont, sample_rate, channel)
  slot = int(slot_s * sample_rate)
  return [tidy(audio[k * slot:(k + 1) * slot]) for k in range(len(phrases))]


def instrument_sources(sample_rate: int, rng: np.random.Generator, per_program: int = 3):
  """Phrases of 2-5 s for every GM program of a class, rendered with every soundfont."""
  jobs, names = [], []
  for label, programs in _GM_PROGRAMS.items():
    for program, low, high in programs:
      for font in SOUNDFONTS:
        phrases = [phrase(rng, low, high, float(rng.uniform(2.0, 4.5)))
                   for _ in range(per_program)]
        jobs.append((program, phrases, font, sample_rate, 7.0, 0))
        names.append((label, program, os.path.splitext(os.path.basename(font))[0]))
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    renders = list(pool.map(render_slots, jobs))
  return [Source(f"fluidsynth/{font}/gm{program:03d}/{k}", label, audio)
          for (label, program, font), audios in zip(names, renders)
          for k, audio in enumerate(audios) if audio.size]
