"""audio_io: decode / downmix / resample / encode, and the reasons bad audio is rejected with."""
import io
import struct

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from train.data import audio_io


def _sine(freq_hz, rate, seconds, phase=0.0):
  t = np.arange(int(round(seconds * rate))) / rate
  return np.sin(2 * np.pi * freq_hz * t + phase)


def _encode(samples, rate, fmt, subtype=None):
  buffer = io.BytesIO()
  sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
  return buffer.getvalue()


@pytest.mark.parametrize("rate_in", [8000, 22050, 44100, 48000])
def test_resample_matches_the_analytic_sine(rate_in):
  # Independent reference: the same continuous sine sampled directly at 16 kHz.
  out = audio_io.resample(_sine(440.0, rate_in, 1.0).astype(np.float32), rate_in, 16000)
  assert out.dtype == np.float32 and out.shape == (16000,)
  expected = _sine(440.0, 16000, 1.0)
  interior = slice(800, -800)                     # away from the filter's edge transients
  np.testing.assert_allclose(out[interior], expected[interior], atol=2e-3)


def test_resample_removes_content_above_the_new_nyquist():
  out = audio_io.resample(_sine(11000.0, 48000, 1.0).astype(np.float32), 48000, 16000)
  assert np.sqrt(np.mean(out[800:-800] ** 2)) < 1e-2   # 11 kHz cannot exist at 16 kHz


def test_downmix_is_the_channel_mean():
  stereo = np.stack([np.full(10, 0.5), np.full(10, -0.25)], axis=1).astype(np.float32)
  np.testing.assert_allclose(audio_io.to_mono(stereo), np.full(10, 0.125))


def test_encode_wav_round_trips_through_tf_decode_wav():
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.uniform(-1, 1, 1000), [1.0, -1.0, 0.0]]).astype(np.float32)
  data = audio_io.encode_wav(x, 16000)
  assert data[:4] == b"RIFF" and len(data) == 44 + 2 * x.size
  decoded, rate = tf.audio.decode_wav(data)
  assert int(rate) == 16000 and decoded.shape == (x.size, 1)
  np.testing.assert_allclose(decoded.numpy()[:, 0], x, atol=1.0 / 32768 + 1e-7)
  # x * 32768 rounded: decode_wav's int/32768 inverts it exactly (full scale clips at 32767)
  ints = np.frombuffer(data[44:], "<i2")
  np.testing.assert_array_equal(ints[-3:], [32767, -32768, 0])
  assert audio_io.encode_wav(x, 16000) == data          # deterministic bytes


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", None),
                                         ("OGG", None)])
def test_load_clip_decodes_resamples_and_downmixes_any_format(fmt, subtype):
  left, right = _sine(300.0, 44100, 0.5), _sine(300.0, 44100, 0.5)
  data = _encode(0.5 * np.stack([left, right], axis=1), 44100, fmt, subtype)
  clip = audio_io.load_clip(data, 16000)
  assert clip.dtype == np.float32 and abs(clip.shape[0] - 8000) <= 1
  expected = 0.5 * _sine(300.0, 16000, 0.5)
  tolerance = 0.05 if fmt == "OGG" else 3e-3           # Vorbis is lossy
  np.testing.assert_allclose(clip[800:7000], expected[800:7000], atol=tolerance)


def test_load_clip_reads_paths(tmp_path):
  path = tmp_path / "a.flac"
  sf.write(path, 0.25 * _sine(100.0, 16000, 0.25), 16000)
  np.testing.assert_allclose(audio_io.load_clip(str(path), 16000), 0.25 * _sine(100.0, 16000, 0.25),
                             atol=1e-4)


def _streamed_wav(samples_int16, rate=22050, declared=0x7FFFF000):
  body = samples_int16.astype("<i2").tobytes()
  fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
  return (b"RIFF" + struct.pack("<I", declared + 36) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
          + fmt + b"data" + struct.pack("<I", declared) + body)


def test_streamed_wav_with_bogus_length_is_read_whole():
  ints = np.arange(-500, 500, dtype=np.int16) * 30
  samples, rate = audio_io.read_wav_ignoring_length(_streamed_wav(ints))
  assert rate == 22050 and samples.shape == (1000, 1)
  np.testing.assert_array_equal(samples[:, 0], ints / 32768.0)
  audio_io.check_wav_length(_streamed_wav(ints))        # a streaming size is not "truncated"
  assert audio_io.decode(_streamed_wav(ints))[0].shape == (1000, 1)


def _bad_inputs(tmp_path):
  good_wav = _encode(0.1 * _sine(200.0, 16000, 0.5), 16000, "WAV")
  good_flac = _encode(0.1 * _sine(200.0, 16000, 0.5), 16000, "FLAC")
  nan = 0.1 * _sine(200.0, 16000, 0.1)
  nan[7] = np.nan
  inf = 0.1 * _sine(200.0, 16000, 0.1)
  inf[3] = np.inf
  return {
      "missing file": str(tmp_path / "nope.wav"),
      "empty file": b"",
      "not decodable audio": b"this is a text file, not audio " * 20,
      "truncated WAV": good_wav[:len(good_wav) // 2],
      "not decodable audio (LibsndfileError": good_flac[:len(good_flac) // 2],   # FLAC lost sync
      "no audio samples": _encode(np.zeros(0), 16000, "WAV"),
      "non-finite samples": _encode(nan, 16000, "WAV", "FLOAT"),
      "non-finite samples ": _encode(inf, 16000, "WAV", "FLOAT"),
  }


def test_bad_inputs_raise_audio_error_with_their_reason(tmp_path):
  for reason, source in _bad_inputs(tmp_path).items():
    with pytest.raises(audio_io.AudioError) as error:
      audio_io.load_clip(source, 16000)
    assert str(error.value).startswith(reason.strip()), (reason, str(error.value))


def test_truncated_flac_at_a_frame_boundary_is_reported(monkeypatch):
  # libsndfile may stop early without an error; fewer frames than the header promised is truncation
  class ShortFile:
    frames, samplerate, format = 100, 16000, "FLAC"
    def __init__(self, *_):
      pass
    def __enter__(self):
      return self
    def __exit__(self, *_):
      return False
    def read(self, **_):
      return np.zeros((60, 1), np.float32)
  monkeypatch.setattr(audio_io.sf, "SoundFile", ShortFile)
  with pytest.raises(audio_io.AudioError, match="truncated: decoded 60 of 100 frames"):
    audio_io.decode(b"fLaC....")


def _wav_header(rate, num_frames, channels=1):
  """A PCM-16 WAV header declaring num_frames at rate (the caller appends the samples)."""
  data_bytes = 2 * channels * num_frames
  return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1,
                     channels, rate, 2 * channels * rate, 2 * channels, 16, b"data", data_bytes)


@pytest.mark.parametrize("rate", [1, 999, 768001])
def test_an_absurd_header_rate_is_refused_before_decoding(rate):
  # 96 KB of samples whose header says 1 Hz: resampled to 16 kHz that would be 13 hours
  data = _wav_header(rate, 48000) + np.zeros(48000, "<i2").tobytes()
  with pytest.raises(audio_io.AudioError, match=f"implausible sample rate {rate} Hz"):
    audio_io.decode(data)
  with pytest.raises(audio_io.AudioError, match=f"implausible sample rate {rate} Hz"):
    audio_io.read_wav_ignoring_length(data)


def test_a_clip_longer_than_the_limit_is_refused_from_its_header(tmp_path, monkeypatch):
  path = tmp_path / "long.wav"
  sf.write(path, np.zeros(16000 * 3, np.float32), 16000, subtype="PCM_16")   # 3 s
  read_calls = []
  real_read = sf.SoundFile.read
  monkeypatch.setattr(sf.SoundFile, "read",
                      lambda *a, **k: read_calls.append(1) or real_read(*a, **k))
  with pytest.raises(audio_io.AudioError, match=r"too long: 3\.0 s .*--max_clip_seconds=2\.5"):
    audio_io.decode(str(path), max_seconds=2.5)
  assert not read_calls                       # judged from the header: no sample decoded
  assert audio_io.decode(str(path), max_seconds=3.0)[0].shape == (48000, 1)
  with pytest.raises(audio_io.AudioError, match="too long"):       # float arrays (audax tensors)
    audio_io.resampled_mono(np.zeros(48000, np.float32), 16000, 16000, max_seconds=2.5)


def test_mono_decoding_is_the_channel_mean_read_in_blocks(tmp_path, monkeypatch):
  monkeypatch.setattr(audio_io, "_BLOCK_FRAMES", 1000)          # several blocks and a tail
  stereo = np.stack([_sine(300, 16000, 0.3), 0.5 * _sine(700, 16000, 0.3)], axis=1) * 0.4
  path = tmp_path / "stereo.wav"
  sf.write(path, stereo, 16000, subtype="PCM_16")
  ints = sf.read(path, dtype="int16")[0].astype(np.float64) / 32768.0
  mono, rate = audio_io.decode(str(path), mono=True)
  assert rate == 16000 and mono.dtype == np.float32 and mono.shape == (4800,)
  np.testing.assert_allclose(mono, ints.mean(axis=1), atol=1e-7)


def test_encode_wav_writes_the_wave_modules_bytes_without_float64_copies():
  import tracemalloc
  import wave
  x = np.clip(np.random.default_rng(0).normal(0, 0.4, 2_000_000), -1, 1).astype(np.float32)
  reference = io.BytesIO()
  with wave.open(reference, "wb") as w:                           # the standard library's writer
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(22050)
    w.writeframes(np.clip(np.rint(x.astype(np.float64) * 32768), -32768, 32767)
                  .astype("<i2").tobytes())
  tracemalloc.start()
  data = audio_io.encode_wav(x, 22050)
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  assert data == reference.getvalue()
  assert peak < 2.5 * x.size * 2       # PCM + WAV bytes + one block; float64 copies made it 8x


def test_frames_beyond_an_estimated_header_count_are_kept_up_to_the_limit(monkeypatch):
  # MP3 headers estimate the frame count; decoding may yield more, never past the limit
  data = np.linspace(-0.5, 0.5, 500, dtype=np.float32).reshape(250, 2)

  class EstimatingFile:
    frames, samplerate, format = 100, 16000, "MPEG"

    def __init__(self, *_):
      self.position = 0

    def __enter__(self):
      return self

    def __exit__(self, *_):
      return False

    def read(self, frames, **_):
      block = data[self.position:self.position + frames]
      self.position += block.shape[0]
      return block

  monkeypatch.setattr(audio_io.sf, "SoundFile", EstimatingFile)
  monkeypatch.setattr(audio_io, "_BLOCK_FRAMES", 64)
  mono, _ = audio_io.decode(b"ID3....", max_seconds=1.0, mono=True)
  np.testing.assert_array_equal(mono, data.mean(axis=1, dtype=np.float32))
  with pytest.raises(audio_io.AudioError, match="too long: more than 200 frames decoded, the "
                                                "header said 100"):
    audio_io.decode(b"ID3....", max_seconds=200 / 16000, mono=True)
