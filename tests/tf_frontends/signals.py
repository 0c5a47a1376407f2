"""Deterministic test signals: a speech-like voiced signal and silence."""
import numpy as np


def speech_like(batch=2, samples=4000, sample_rate=16000, seed=0):
  """Glottal-pulse-like harmonics (f0 110-220 Hz, gliding) under a syllabic envelope, plus noise."""
  rng = np.random.default_rng(seed)
  t = np.arange(samples) / sample_rate
  out = []
  for _ in range(batch):
    f0 = rng.uniform(110, 220) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k * np.exp(-((k * f0 - 700) / 900)**2)
                 for k in range(1, 30))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) + 0.05
    out.append(0.3 * envelope * voiced + 0.01 * rng.standard_normal(samples))
  return np.asarray(out, np.float32)
