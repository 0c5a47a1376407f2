"""Evaluation: centre-crop and whole-clip scores against a float64 reference that reads the
records itself, a clip much longer than the others, and memory that does not grow with it.
(Distributed evaluation: tests/train/test_distributed.py.)"""
import io
import json
import os
import threading

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from tests import harness
from train import evaluation, models
from train import metrics as metrics_lib

CROP_SAMPLES = 8000                   # harness.TINY's 0.5 s crops at 16 kHz


def _add_long_clip(data_dir, seconds, labels=(1,)):
  """Puts one clip of `seconds` of noise between the eval split's two shards."""
  rng = np.random.default_rng(5)
  pcm = rng.integers(-6000, 6000, int(seconds * harness.SAMPLE_RATE), dtype=np.int16)
  wav = io.BytesIO()
  soundfile.write(wav, pcm, harness.SAMPLE_RATE, format="WAV", subtype="PCM_16")
  example = tf.train.Example(features=tf.train.Features(feature={
      "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[wav.getvalue()])),
      "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(labels))),
      "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"long"])),
  })).SerializeToString()
  with tf.io.TFRecordWriter(os.path.join(data_dir, "eval-long.tfrecord")) as writer:
    writer.write(example)
  info_path = os.path.join(data_dir, "dataset_info.json")
  with open(info_path) as f:
    info = json.load(f)
  info["splits"]["eval"]["files"].insert(1, "eval-long.tfrecord")
  info["splits"]["eval"]["num_examples"] += 1
  with open(info_path, "w") as f:
    json.dump(info, f)
  return data_dir


def _read_split(data_dir, split="eval"):
  """[(audio float64 [n], multi-hot labels [C])] in shard order, decoded here (soundfile)."""
  with open(os.path.join(data_dir, "dataset_info.json")) as f:
    info = json.load(f)
  clips = []
  for name in info["splits"][split]["files"]:
    for record in tf.data.TFRecordDataset(os.path.join(data_dir, name)).as_numpy_iterator():
      feature = tf.train.Example.FromString(record).features.feature
      audio, _ = soundfile.read(io.BytesIO(feature["audio"].bytes_list.value[0]), dtype="float64")
      labels = np.zeros(len(info["classes"]))
      labels[list(feature["labels"].int64_list.value)] = 1.0
      clips.append((audio, labels))
  return clips


def _centre_crop(audio):
  offset = max(len(audio) - CROP_SAMPLES, 0) // 2
  crop = audio[offset:offset + CROP_SAMPLES]
  return np.pad(crop, [0, CROP_SAMPLES - len(crop)])


def _windows(audio):
  """[W, crop]: hop = crop, the last zero-padded; a clip shorter than the crop is one window."""
  num_windows = max(1, -(-len(audio) // CROP_SAMPLES))
  return np.pad(audio, [0, num_windows * CROP_SAMPLES - len(audio)]).reshape(num_windows, -1)


class LinearScorer(tf.Module):
  """A stand-in classifier, logits = crop @ kernel, that records the shapes it is traced with."""

  def __init__(self, kernel):
    super().__init__()
    self.kernel = tf.Variable(kernel.astype(np.float32))
    self.traced_shapes = []

  def __call__(self, audio, training=False):
    self.traced_shapes.append(tuple(audio.shape))
    return tf.matmul(audio, self.kernel)

  def scores(self, logits):
    return tf.sigmoid(logits)


@pytest.fixture(scope="module")
def minute_clip_data(tmp_path_factory):
  """23 clips of 0.25-1.25 s (two shards of 12 and 11) and, between them, one of 61.3 s."""
  data_dir = harness.write_dataset(str(tmp_path_factory.mktemp("minute")), num_train=4,
                                   num_eval=23, seed=1)
  return _add_long_clip(data_dir, 61.3)


def test_scores_match_a_float64_reference_and_every_batch_has_one_shape(minute_clip_data):
  config = harness.tiny_config(minute_clip_data)
  config.eval_batch_size = 5                         # divides neither 24 clips nor 151 windows
  kernel = np.random.default_rng(0).normal(0, 3 / np.sqrt(CROP_SAMPLES), [CROP_SAMPLES, 3])
  model = LinearScorer(kernel)
  clips = _read_split(minute_clip_data)
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  expected = {
      "eval": np.stack([sigmoid(_centre_crop(audio) @ kernel) for audio, _ in clips]),
      "full_clip": np.stack([sigmoid(_windows(audio) @ kernel).mean(axis=0)
                             for audio, _ in clips])}
  y_true = np.stack([labels for _, labels in clips])
  results = evaluation.evaluate(model, config)
  for mode, name in (("eval", "centre_crop"), ("full_clip", "full_clip")):
    labels, scores = evaluation.score_clips(model, config, "eval", mode)
    np.testing.assert_array_equal(labels, y_true)    # every clip once, in shard order
    # float32 dot products of 8000 terms: |logit error| ~ sqrt(8000) * 6e-8 * |terms|
    np.testing.assert_allclose(scores, expected[mode], rtol=0, atol=2e-6)
    reference = metrics_lib.audioset_metrics(y_true, expected[mode])
    for key in ("mAP", "mAUC", "dprime"):
      assert results[name][key] == pytest.approx(reference[key], abs=1e-6), (name, key)
    assert results[name]["num_examples"] == 24
  assert set(model.traced_shapes) == {(5, CROP_SAMPLES)}   # 61 s clip included
  assert len(_windows(clips[12][0])) == 123                # the long clip is really scored whole


@pytest.fixture(scope="module")
def half_hour_clip_data(tmp_path_factory):
  data_dir = harness.write_dataset(str(tmp_path_factory.mktemp("half_hour")), num_train=4,
                                   num_eval=23, seed=1)
  return _add_long_clip(data_dir, 30 * 60)


def _resident_bytes():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakResident(threading.Thread):
  """Samples this process's resident memory every 5 ms until stopped; .peak in bytes."""

  def __init__(self):
    super().__init__(daemon=True)
    self.peak, self._done = _resident_bytes(), threading.Event()

  def run(self):
    while not self._done.wait(0.005):
      self.peak = max(self.peak, _resident_bytes())

  def stop(self):
    self._done.set()
    self.join()


@pytest.mark.slow
def test_half_hour_clip_scores_as_alone_in_bounded_memory(half_hour_clip_data):
  """Before (issue 25 item 5): a batch of 16 clips was padded to the 30 min clip (16 x 28.8 M
  samples, 1.8 GB) and framed at once (1.8 GB more) before the model saw 57,600 windows."""
  config = harness.tiny_config(half_hour_clip_data)
  config.model.num_classes = 3
  config.eval_batch_size = 16
  model = models.build_model(config)
  clips = _read_split(half_hour_clip_data)
  evaluation.score_clips(model, config, "eval", "eval")      # warm up: traces, thread pools
  before = _resident_bytes()
  sampler = _PeakResident()
  sampler.start()
  try:
    labels, scores = evaluation.score_clips(model, config, "eval", "full_clip")
  finally:
    sampler.stop()
  # The clip itself is in memory a few times (WAV bytes 58 MB, decoded and padded 115 MB
  # each); nothing grows with the number of windows.
  assert sampler.peak - before < 1.0e9, (sampler.peak - before) / 1e9
  assert labels.shape == (24, 3)
  windows = _windows(clips[12][0]).astype(np.float32)
  assert len(windows) == 3600
  alone = np.concatenate([model.scores(model(windows[i:i + 100])).numpy()
                          for i in range(0, len(windows), 100)]).mean(axis=0, dtype=np.float64)
  np.testing.assert_allclose(scores[12], alone, rtol=0, atol=1e-6)
  for index in (0, 13, 23):                                # its neighbours, and the last
    short = _windows(clips[index][0]).astype(np.float32)
    np.testing.assert_allclose(scores[index], model.scores(model(short)).numpy().mean(axis=0),
                               rtol=0, atol=1e-6)
