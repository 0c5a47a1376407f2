"""Audio decoding and encoding for data prep: any soundfile format in, 16-bit PCM mono WAV bytes out.

Pure numpy / soundfile / scipy (no TensorFlow), so prep workers stay light. Every failure
that data prep must count instead of crashing on is raised as `AudioError(reason)`, among them
a header rate outside MIN/MAX_SAMPLE_RATE_HZ or a header length over `max_seconds`, refused
before a sample is decoded. Files are decoded block by block straight into the output array.

  load_clip(path_or_bytes, sample_rate)  -> float32 [num_samples] in [-1, 1]  (mono, resampled)
  encode_wav(samples, sample_rate)        -> bytes  (44-byte header + int16 little-endian PCM)
  read_wav_ignoring_length(data)          -> (float32 [T, C], rate)  for streamed WAVs (espeak-ng --stdout)
"""
import io
import math
import os
import struct

import numpy as np
import scipy.signal
import soundfile as sf

# Data-chunk sizes that streaming writers put in the header when they cannot seek back
# (espeak-ng --stdout writes 0x7ffff000). A WAV that declares one of these is not truncated.
_STREAMING_SIZES = (0, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF)


# Header values outside these are corrupt or hostile, not audio: a 96 KB WAV that claims 1 Hz would
# resample to 13 hours at 16 kHz. Decoded lengths are bounded by a duration (prep's
# --max_clip_seconds) checked against the header before any sample is read.
MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ = 1000, 768000
DEFAULT_MAX_SECONDS = 3600.0
_BLOCK_FRAMES = 1 << 18          # frames decoded at a time (4 MB of float32 for a stereo file)


class AudioError(Exception):
  """A file that data prep skips; str(error) is the reason recorded in dataset_info.json."""


def check_rate_and_length(num_frames: int, rate: int, max_seconds: float) -> None:
  """AudioError (a skip reason) for a rate outside the sane range or a clip over max_seconds."""
  if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
    raise AudioError(f"implausible sample rate {rate} Hz (accepted {MIN_SAMPLE_RATE_HZ}-"
                     f"{MAX_SAMPLE_RATE_HZ} Hz)")
  if num_frames > max_seconds * rate:
    raise AudioError(f"too long: {num_frames / rate:.1f} s ({num_frames} frames at {rate} Hz) "
                     f"exceeds --max_clip_seconds={max_seconds:g}")


def _riff_data_chunk(f, size: int):
  """(offset of the samples, declared size) of a RIFF/WAVE 'data' chunk of the seekable binary
  file f of `size` bytes, or None if absent. Reads chunk headers only."""
  pos = 12
  while pos + 8 <= size:
    f.seek(pos)
    header = f.read(8)
    chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:8])[0]
    if chunk_id == b"data":
      return pos + 8, chunk_size
    pos += 8 + chunk_size + (chunk_size & 1)   # chunks are word aligned
  return None


def _check_wav_stream(f, size: int) -> None:
  f.seek(0)
  head = f.read(12)
  if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
    return
  chunk = _riff_data_chunk(f, size)
  if chunk is None:
    return                         # soundfile reports the missing chunk itself
  offset, declared = chunk
  available = size - offset
  if declared > available and declared not in _STREAMING_SIZES:
    raise AudioError(f"truncated WAV: header declares {declared} data bytes, file holds {available}")


def check_wav_length(data: bytes) -> None:
  """Raises AudioError('truncated ...') if a WAV declares more sample bytes than it holds."""
  _check_wav_stream(io.BytesIO(data), len(data))


def read_wav_ignoring_length(data: bytes, max_seconds: float = DEFAULT_MAX_SECONDS):
  """Decodes PCM-16 WAV bytes using everything after the 'data' header, whatever size it declares.

  For writers that stream to stdout and cannot fix the header afterwards. Returns
  (float32 [frames, channels] in [-1, 1), sample_rate).
  """
  if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
    raise AudioError("not a RIFF/WAVE stream")
  fmt = data.find(b"fmt ")
  chunk = _riff_data_chunk(io.BytesIO(data), len(data))
  if fmt < 0 or chunk is None:
    raise AudioError("WAV stream without 'fmt ' or 'data' chunk")
  audio_format, channels, rate = struct.unpack("<HHI", data[fmt + 8:fmt + 16])
  bits = struct.unpack("<H", data[fmt + 22:fmt + 24])[0]
  if audio_format != 1 or bits != 16 or channels < 1:
    raise AudioError(f"WAV stream is format {audio_format} with {bits} bits and {channels} "
                     "channels, expected PCM-16")
  body = memoryview(data)[chunk[0]:]
  body = body[:len(body) - len(body) % (2 * channels)]
  check_rate_and_length(len(body) // (2 * channels), rate, max_seconds)
  samples = np.frombuffer(body, dtype="<i2").reshape(-1, channels)
  return samples.astype(np.float32) / 32768.0, rate


def _open_binary(source):
  """A seekable binary file over a path or encoded bytes (not read into memory for a path)."""
  if isinstance(source, (str, os.PathLike)):
    if not os.path.isfile(source):
      raise AudioError("missing file")
    return open(source, "rb")
  return io.BytesIO(source)


def decode(source, max_seconds: float = DEFAULT_MAX_SECONDS, mono: bool = False) -> tuple:
  """Decodes a path or bytes with soundfile. Returns (float32 [frames, channels], sample_rate),
  or [frames] downmixed block by block when `mono`.

  The rate and the length are checked against the header (check_rate_and_length) before any
  sample is decoded, and a path is decoded block by block: memory is the output array, not a
  copy of the file plus its decoded form.
  """
  with _open_binary(source) as raw:
    size = raw.seek(0, io.SEEK_END)
    if size == 0:
      raise AudioError("empty file")
    _check_wav_stream(raw, size)
    raw.seek(0)
    try:
      with sf.SoundFile(raw) as f:
        expected, rate, container = f.frames, f.samplerate, f.format
        check_rate_and_length(expected, rate, max_seconds)
        limit = max_seconds * rate
        samples = _read_blocks(f, expected, limit, mono)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
      # libsndfile's own message, without soundfile's "<BytesIO object at 0x...>" (not deterministic)
      message = getattr(e, "error_string", None) or str(e)
      raise AudioError(f"not decodable audio ({type(e).__name__}: {message})") from None
  if samples.shape[0] == 0:
    raise AudioError("no audio samples")
  if container != "MPEG" and samples.shape[0] < expected:   # MP3 frame counts are estimates
    raise AudioError(f"truncated: decoded {samples.shape[0]} of {expected} frames")
  return samples, rate


def _read_blocks(f, expected: int, limit: float, mono: bool) -> np.ndarray:
  """Every frame of the open SoundFile f into one float32 array sized from the header; more
  frames than the header said (MP3 estimates) are appended, up to `limit`."""
  out, done, extra = None, 0, []
  while True:
    block = f.read(frames=_BLOCK_FRAMES, dtype="float32", always_2d=True)
    if block.shape[0] == 0:
      break
    if mono:
      block = block.mean(axis=1, dtype=np.float32)
    if out is None:
      out = np.empty((expected,) + block.shape[1:], np.float32)
    take = min(block.shape[0], expected - done)
    out[done:done + take] = block[:take]
    if take < block.shape[0]:
      extra.append(block[take:])
      if done + take + sum(len(x) for x in extra) > limit:
        raise AudioError(f"too long: more than {limit:.0f} frames decoded, the header said "
                         f"{expected} (exceeds --max_clip_seconds)")
    done += take
    if block.shape[0] < _BLOCK_FRAMES:
      break
  if out is None:
    return np.zeros((0,) if mono else (0, 1), np.float32)
  return np.concatenate([out[:done]] + extra) if extra else out[:done]


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


def resampled_mono(samples: np.ndarray, rate: int, sample_rate: int,
                   max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
  """prepare_samples without the clipping: float WAVs and resampling can exceed [-1, 1]."""
  samples = np.asarray(samples, dtype=np.float32)
  if samples.size == 0:
    raise AudioError("no audio samples")
  if not np.all(np.isfinite(samples)):
    raise AudioError("non-finite samples (NaN or inf)")
  check_rate_and_length(samples.shape[0], rate, max_seconds)
  return resample(to_mono(samples), rate, sample_rate)


def to_int16(samples: np.ndarray) -> np.ndarray:
  """[-1, 1] float -> int16 with x * 32768 rounded, so tf.audio.decode_wav (int / 32768) inverts it.

  float32 input is converted in float32 (x * 32768 and rint are exact there), block by block:
  no float64 copy of a long clip.
  """
  samples = np.asarray(samples)
  if samples.dtype != np.float32:
    samples = samples.astype(np.float64, copy=False)
  out = np.empty(samples.shape, "<i2")
  for start in range(0, samples.shape[0], _BLOCK_FRAMES):
    block = samples[start:start + _BLOCK_FRAMES] * samples.dtype.type(32768.0)
    out[start:start + _BLOCK_FRAMES] = np.clip(np.rint(block, out=block), -32768, 32767, out=block)
  return out


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
  """float [num_samples] in [-1, 1] -> canonical 16-bit PCM mono WAV bytes (deterministic)."""
  return pcm_wav(to_int16(samples), sample_rate)


def pcm_wav(pcm: np.ndarray, sample_rate: int) -> bytes:
  """int16 [num_samples] -> WAV bytes: the 44-byte header the wave module writes, then the PCM
  little-endian (a caller that drops its float samples first holds two copies of the PCM at
  most)."""
  pcm = np.asarray(pcm, "<i2")
  data_bytes = pcm.nbytes
  header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, 1,
                       int(sample_rate), 2 * int(sample_rate), 2, 16, b"data", data_bytes)
  return b"".join((header, memoryview(pcm).cast("B")))
