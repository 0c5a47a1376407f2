"""Mixing rules of the demo set: labelled events over a background, augmented, with their times.

A clip of 2-5 s holds 1-3 classes. Each class gets one track that sounds over a random span of at
least half the clip: a long source (speech, an instrument phrase, a drum pattern) is excerpted or
followed by another of its class; short one-shots (a tabla stroke, a bell) are repeated as a
rhythm of 1-3 sources. Each track is coloured by a random EQ and set to a random loudness
(RMS within 6 dB of the others, so no labelled class is masked); the mix gets room reverb
(half the clips), a background (an ambience bed, or pink / brown / white noise at 12-40 dB below
the foreground) and a random peak level. The events record where each class is audible (above
-30 dB of its track's peak), so a crop's labels can be the classes it actually contains.
"""
import numpy as np
import scipy.ndimage
import scipy.signal

SAMPLE_RATE = 16000
MIN_SECONDS, MAX_SECONDS = 2.0, 5.0
LABEL_COUNT_PROBS = (0.5, 0.35, 0.15)        # P(1, 2, 3 labels)
TRACK_LEVEL_DB = (-6.0, 0.0)                 # each class's loudness (RMS) in the mix
SHORT_SOURCE_SECONDS = 1.0
AUDIBLE_FRACTION = 0.03                      # -30 dB of a track's peak
MERGE_GAP_SECONDS = 0.25                     # closer audible parts are one event


def coloured_noise(num_samples, exponent, rng):
  """Noise with power ~ 1/f^exponent (0 white, 1 pink, 2 brown); unit peak."""
  size = 1 << (num_samples - 1).bit_length()           # power of two: clip lengths are often prime
  spectrum = np.fft.rfft(rng.standard_normal(size))
  spectrum[1:] /= np.arange(1, spectrum.shape[0]) ** (exponent / 2)
  spectrum[0] = 0.0
  noise = np.fft.irfft(spectrum, n=size)[:num_samples]
  return (noise / max(np.max(np.abs(noise)), 1e-9)).astype(np.float32)


def random_eq(audio, rng, sample_rate=SAMPLE_RATE):
  """A peaking filter of +-9 dB at a random frequency, sometimes a low- or high-pass too."""
  centre_hz = float(np.exp(rng.uniform(np.log(150), np.log(6000))))
  gain = 10 ** (rng.uniform(-9, 9) / 40)                  # sqrt of the amplitude gain (RBJ's A)
  w0 = 2 * np.pi * centre_hz / sample_rate
  alpha = np.sin(w0) / (2 * rng.uniform(0.5, 2.0))
  b = [1 + alpha * gain, -2 * np.cos(w0), 1 - alpha * gain]
  a = [1 + alpha / gain, -2 * np.cos(w0), 1 - alpha / gain]
  out = scipy.signal.lfilter(b, a, audio)
  if rng.random() < 0.3:
    sos = scipy.signal.butter(2, rng.uniform(3000, 7500), "lowpass", fs=sample_rate, output="sos")
    out = scipy.signal.sosfilt(sos, out)
  elif rng.random() < 0.3:
    sos = scipy.signal.butter(2, rng.uniform(60, 400), "highpass", fs=sample_rate, output="sos")
    out = scipy.signal.sosfilt(sos, out)
  return out


def reverb(clip, rng, sample_rate=SAMPLE_RATE):
  """Convolution with a synthetic room: exponentially decaying noise, RT60 0.15-1.0 s."""
  rt60_s = rng.uniform(0.15, 1.0)
  t = np.arange(int(rt60_s * sample_rate)) / sample_rate
  response = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60_s)   # -60 dB at rt60
  response[0] = 0.0
  wet = scipy.signal.fftconvolve(clip, response)[:clip.size]
  wet *= np.sqrt(np.sum(clip ** 2) / max(np.sum(wet ** 2), 1e-12))
  mix = rng.uniform(0.1, 0.5)
  return (1 - mix) * clip + mix * wet


def audible_spans(track, sample_rate=SAMPLE_RATE):
  """[(start, end)] samples where a 10 ms envelope is above AUDIBLE_FRACTION of its peak."""
  window = max(1, sample_rate // 100)
  envelope = scipy.ndimage.maximum_filter1d(np.abs(track), window)
  loud = envelope > AUDIBLE_FRACTION * max(float(envelope.max()), 1e-12)
  edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
  spans = []
  for start, end in zip(edges[::2], edges[1::2]):
    if spans and start - spans[-1][1] < MERGE_GAP_SECONDS * sample_rate:
      spans[-1] = (spans[-1][0], end)
    else:
      spans.append((start, end))
  return spans


def _sounding_rms(track):
  """RMS over the samples where the track sounds (above -60 dB of its peak).

  Levels set by RMS, not by peak: a drum groove and a held flute note of equal
  peak differ by ~15 dB in loudness, and the quieter one would be masked.
  """
  magnitude = np.abs(track)
  sounding = magnitude > 1e-3 * max(float(magnitude.max()), 1e-12)
  return max(float(np.sqrt(np.mean(track[sounding] ** 2))) if sounding.any() else 0.0, 1e-9)


def _place(track, audio, offset, rng):
  """Adds audio at offset (cut at the track's end); a longer source gives its loudest excerpt."""
  room = track.size - offset
  if audio.size > room:
    starts = rng.integers(0, audio.size - room + 1, size=3)
    start = max(starts, key=lambda s: float(np.sum(audio[s:s + room] ** 2)))
    audio = audio[start:start + room]
  track[offset:offset + audio.size] += audio
  return offset + audio.size


def event_track(pool, num_samples, rng, sample_rate=SAMPLE_RATE):
  """(track [num_samples] float64, source names) of one class over >= half the clip."""
  span = int(rng.uniform(0.5, 1.0) * num_samples)
  start = int(rng.integers(0, num_samples - span + 1))
  track = np.zeros(num_samples, np.float64)
  end, used = start + span, []
  first = pool[int(rng.integers(len(pool)))]
  if first.audio.size < SHORT_SOURCE_SECONDS * sample_rate:   # a rhythm of one-shots
    others = [s for s in pool if s is not first and s.audio.size < SHORT_SOURCE_SECONDS * sample_rate]
    picks = [first] + [others[i] for i in rng.choice(len(others), min(int(rng.integers(0, 3)),
                                                                       len(others)), replace=False)]
    interval = int(rng.uniform(0.12, 0.5) * sample_rate)
    for k, offset in enumerate(range(start, end, interval)):
      source = picks[k % len(picks)] if rng.random() < 0.7 else picks[int(rng.integers(len(picks)))]
      _place(track[:end], source.audio * rng.uniform(0.5, 1.0), offset, rng)
    used = [s.name for s in picks]
  else:                                                         # excerpts until the span is full
    offset, source = start, first
    while offset < end - sample_rate // 4 and len(used) < 3:
      offset = _place(track[:end], source.audio, offset, rng) + int(rng.integers(0, sample_rate // 5))
      used.append(source.name)
      source = pool[int(rng.integers(len(pool)))]
      if source.name in used:
        break
  return random_eq(track, rng, sample_rate), used


def mix_clip(by_label, backgrounds, class_names, rng, sample_rate=SAMPLE_RATE):
  """-> (float32 [samples] with peak < 1, sorted labels, events [(label, start_s, end_s)], names).

  Events are sorted by (label, start); every label has at least one.
  """
  n = int(rng.integers(int(MIN_SECONDS * sample_rate), int(MAX_SECONDS * sample_rate) + 1))
  num_labels = int(rng.choice([1, 2, 3], p=LABEL_COUNT_PROBS))
  labels = sorted(rng.choice(class_names, num_labels, replace=False).tolist())
  clip, events, used = np.zeros(n, np.float64), [], []
  for label in labels:
    track, names = event_track(by_label[label], n, rng, sample_rate)
    track *= 10 ** (rng.uniform(*TRACK_LEVEL_DB) / 20) / _sounding_rms(track)
    spans = audible_spans(track, sample_rate) or [(0, n)]
    events += [(label, s / sample_rate, e / sample_rate) for s, e in spans]
    clip += track
    used += names
  if rng.random() < 0.5:
    clip = reverb(clip, rng, sample_rate)
  foreground_rms = float(np.sqrt(np.mean(clip ** 2)))
  if rng.random() < 0.4 and backgrounds:
    bed = backgrounds[int(rng.integers(len(backgrounds)))]
    noise = np.zeros(n)
    _place(noise, bed.audio, int(rng.integers(0, max(1, n - bed.audio.size))), rng)
    used.append(bed.name)
  else:
    noise = coloured_noise(n, float(rng.choice([0.0, 1.0, 2.0])), rng).astype(np.float64)
  noise_rms = float(np.sqrt(np.mean(noise ** 2)))
  if noise_rms > 0:
    clip += noise * foreground_rms / noise_rms * 10 ** (-rng.uniform(12, 40) / 20)
  clip *= rng.uniform(0.3, 0.9) / max(np.max(np.abs(clip)), 1e-9)
  return clip.astype(np.float32), labels, sorted(events), used
