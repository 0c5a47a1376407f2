"""Audio decoding and encoding for data prep: any soundfile format in, 16-bit PCM mono WAV bytes out.

Pure numpy / soundfile / scipy (no TensorFlow), so prep workers stay light. Every failure
that data prep must count instead of crashing on is raised as `AudioError(reason)`.

  load_clip(path_or_bytes, sample_rate)  -> float32 [num_samples] in [-1, 1]  (mono, resampled)
  encode_wav(samples, sample_rate)        -> bytes  (44-byte header + int16 little-endian PCM)
  read_wav_ignoring_length(data)          -> (float32 [T, C], rate)  for streamed WAVs (espeak-ng --stdout)
"""
import io
import math
import os
import struct
import wave

import numpy as np
import scipy.signal
import soundfile as sf

# Data-chunk sizes that streaming writers put in the header when they cannot seek back
# (espeak-ng --stdout writes 0x7ffff000). A WAV that declares one of these is not truncated.
_STREAMING_SIZES = (0, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF)


class AudioError(Exception):
  """A file that data prep skips; str(error) is the reason recorded in dataset_info.json."""


def _riff_data_chunk(data: bytes):
  """(offset of the samples, declared size) of a RIFF/WAVE 'data' chunk, or None if absent."""
  pos = 12
  while pos + 8 <= len(data):
    chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
    if chunk_id == b"data":
      return pos + 8, size
    pos += 8 + size + (size & 1)   # chunks are word aligned
  return None


def check_wav_length(data: bytes) -> None:
  """Raises AudioError('truncated ...') if a WAV declares more sample bytes than it holds."""
  if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
    return
  chunk = _riff_data_chunk(data)
  if chunk is None:
    return                         # soundfile reports the missing chunk itself
  offset, declared = chunk
  available = len(data) - offset
  if declared > available and declared not in _STREAMING_SIZES:
    raise AudioError(f"truncated WAV: header declares {declared} data bytes, file holds {available}")


def read_wav_ignoring_length(data: bytes):
  """Decodes PCM-16 WAV bytes using everything after the 'data' header, whatever size it declares.

  For writers that stream to stdout and cannot fix the header afterwards. Returns
  (float32 [frames, channels] in [-1, 1), sample_rate).
  """
  if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
    raise AudioError("not a RIFF/WAVE stream")
  fmt = data.find(b"fmt ")
  chunk = _riff_data_chunk(data)
  if fmt < 0 or chunk is None:
    raise AudioError("WAV stream without 'fmt ' or 'data' chunk")
  audio_format, channels, rate = struct.unpack("<HHI", data[fmt + 8:fmt + 16])
  bits = struct.unpack("<H", data[fmt + 22:fmt + 24])[0]
  if audio_format != 1 or bits != 16:
    raise AudioError(f"WAV stream is format {audio_format} with {bits} bits, expected PCM-16")
  body = data[chunk[0]:]
  body = body[:len(body) - len(body) % (2 * channels)]
  samples = np.frombuffer(body, dtype="<i2").reshape(-1, channels)
  return samples.astype(np.float32) / 32768.0, rate


def decode(source) -> tuple:
  """Decodes a path or bytes with soundfile. Returns (float32 [frames, channels], sample_rate)."""
  if isinstance(source, (str, os.PathLike)):
    if not os.path.isfile(source):
      raise AudioError("missing file")
    with open(source, "rb") as f:
      data = f.read()
  else:
    data = bytes(source)
  if not data:
    raise AudioError("empty file")
  check_wav_length(data)
  try:
    with sf.SoundFile(io.BytesIO(data)) as f:
      expected, rate, container = f.frames, f.samplerate, f.format
      samples = f.read(dtype="float32", always_2d=True)
  except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
    # libsndfile's own message, without soundfile's "<BytesIO object at 0x...>" (not deterministic)
    message = getattr(e, "error_string", None) or str(e)
    raise AudioError(f"not decodable audio ({type(e).__name__}: {message})") from None
  if samples.shape[0] == 0:
    raise AudioError("no audio samples")
  if container != "MPEG" and samples.shape[0] < expected:   # MP3 frame counts are estimates
    raise AudioError(f"truncated: decoded {samples.shape[0]} of {expected} frames")
  return samples, rate


def to_mono(samples: np.ndarray) -> np.ndarray:
  """[frames, channels] -> [frames], the mean over channels (float32)."""
  return samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
  """Polyphase resampling (scipy's Kaiser-windowed FIR, up/down reduced by their gcd)."""
  if rate_in == rate_out:
    return samples.astype(np.float32, copy=False)
  g = math.gcd(int(rate_in), int(rate_out))
  out = scipy.signal.resample_poly(samples, rate_out // g, rate_in // g, axis=0)
  return out.astype(np.float32, copy=False)


def load_clip(source, sample_rate: int) -> np.ndarray:
  """Path or encoded bytes -> float32 [num_samples] mono at `sample_rate`, clipped to [-1, 1]."""
  samples, rate = decode(source)
  return prepare_samples(samples, rate, sample_rate)


def prepare_samples(samples: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
  """Checks, downmixes and resamples already decoded float samples ([frames] or [frames, ch]);
  clipped to [-1, 1]."""
  return np.clip(resampled_mono(samples, rate, sample_rate), -1.0, 1.0)


def resampled_mono(samples: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
  """prepare_samples without the clipping: float WAVs and resampling can exceed [-1, 1]."""
  samples = np.asarray(samples, dtype=np.float32)
  if samples.size == 0:
    raise AudioError("no audio samples")
  if not np.all(np.isfinite(samples)):
    raise AudioError("non-finite samples (NaN or inf)")
  if rate <= 0:
    raise AudioError(f"invalid sample rate {rate}")
  return resample(to_mono(samples), rate, sample_rate)


def to_int16(samples: np.ndarray) -> np.ndarray:
  """[-1, 1] float -> int16 with x * 32768 rounded, so tf.audio.decode_wav (int / 32768) inverts it."""
  return np.clip(np.rint(np.asarray(samples, np.float64) * 32768.0), -32768, 32767).astype("<i2")


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
  """float [num_samples] in [-1, 1] -> canonical 16-bit PCM mono WAV bytes (deterministic)."""
  buffer = io.BytesIO()
  with wave.open(buffer, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(int(sample_rate))
    w.writeframes(to_int16(samples).tobytes())
  return buffer.getvalue()
