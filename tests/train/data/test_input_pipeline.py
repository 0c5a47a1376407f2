"""input_pipeline: crop / pad arithmetic, multi-hot labels, the three modes, mixup, sharding, strategies.

The fixture's clips hold int16-exact ramps, so every sample identifies its clip and position and a
crop's offset can be read off its first sample.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from train.data import dataset_info, input_pipeline, manifests, prepare_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RATE, NUM_CLASSES, CROP_S = 16000, 5, 1.0
CROP = int(CROP_S * RATE)


def _clip(k):
  """Clip k: 0.5 s .. 2.4 s of a ramp whose int16 values are unique within the clip."""
  length = 8000 + (k * 2737) % 30000          # < 40000: values unique within a clip
  ints = (np.arange(length) + 1000 * k) % 40000 - 20000
  return ints.astype(np.float32) / 32768.0


def _labels(k):
  return tuple(sorted({k % 3, (k + 1) % 5} if k % 2 else {k % 3}))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("pipeline_data"))
  classes = [{"index": i, "id": f"c{i}", "display_name": f"C{i}"} for i in range(NUM_CLASSES)]
  make = lambda ks: [manifests.Entry(f"clip{k}", _labels(k), _clip(k), f"clip{k}", RATE) for k in ks]
  prepare_data.prepare({"train": make(range(24)), "eval": make(range(24, 34))}, classes, out,
                       examples_per_shard=6, quiet=True)
  info = dataset_info.read(out)
  assert len(info["splits"]["train"]["files"]) == 4 and len(info["splits"]["eval"]["files"]) == 2
  return out


def _index(example_id):
  return int(example_id.decode()[4:])


def _expected_crop(k, offset):
  clip = _clip(k)
  padded = np.concatenate([clip, np.zeros(max(CROP - clip.size, 0), np.float32)])
  return padded[offset:offset + CROP]


@pytest.mark.parametrize("length,offset", [(100, 0), (100, 30), (50, 0), (20, 0)])
def test_crop_or_pad_matches_numpy(length, offset):
  audio = np.arange(1, length + 1, dtype=np.float32)
  reference = np.concatenate([audio, np.zeros(max(50 - length, 0), np.float32)])[offset:offset + 50]
  eager = input_pipeline.crop_or_pad(tf.constant(audio), 50, tf.constant(offset))
  traced = tf.function(lambda a, o: input_pipeline.crop_or_pad(a, 50, o),
                       input_signature=[tf.TensorSpec([None]), tf.TensorSpec([], tf.int32)])
  np.testing.assert_array_equal(eager.numpy(), reference)
  np.testing.assert_array_equal(traced(audio, offset).numpy(), reference)
  assert int(input_pipeline.max_offset(tf.constant(length), 50)) == max(length - 50, 0)


def test_multi_hot():
  cases = [([], [0, 0, 0, 0]), ([2], [0, 0, 1, 0]), ([3, 0, 3], [1, 0, 0, 1])]
  for labels, expected in cases:
    got = input_pipeline.multi_hot(tf.constant(labels, tf.int64), 4)
    np.testing.assert_array_equal(got.numpy(), np.array(expected, np.float32))


def _check_batch(batch, centre):
  audio, labels = batch["audio"].numpy(), batch["labels"].numpy()
  for row, example_id in enumerate(batch["id"].numpy()):
    k = _index(example_id)
    expected_labels = np.zeros(NUM_CLASSES, np.float32)
    expected_labels[list(_labels(k))] = 1.0
    np.testing.assert_array_equal(labels[row], expected_labels)
    clip = _clip(k)
    limit = max(clip.size - CROP, 0)
    offset = limit // 2 if centre else int(np.flatnonzero(clip == audio[row, 0])[0])
    assert 0 <= offset <= limit
    np.testing.assert_array_equal(audio[row], _expected_crop(k, offset))


def test_train_mode_random_crops_shapes_and_repeat(data_dir):
  ds = input_pipeline.make_dataset(data_dir, "train", batch_size=5, crop_seconds=CROP_S,
                                   mode="train", seed=3)
  assert ds.element_spec["audio"].shape == (5, CROP) and ds.element_spec["labels"].shape == (5, 5)
  seen, offsets = set(), set()
  for batch in ds.take(12):                       # 60 examples: 2.5 epochs of 24
    _check_batch(batch, centre=False)
    seen |= {_index(i) for i in batch["id"].numpy()}
    offsets |= {float(a) for a in batch["audio"].numpy()[:, 0]}
  assert seen == set(range(24)) and len(offsets) > 20      # crops move


def test_seeded_train_mode_is_deterministic(data_dir):
  def first_batches(seed):
    ds = input_pipeline.make_dataset(data_dir, "train", batch_size=4, crop_seconds=CROP_S,
                                     mode="train", seed=seed)
    return [(b["id"].numpy().tolist(), b["audio"].numpy()) for b in ds.take(4)]
  a, b, c = first_batches(7), first_batches(7), first_batches(8)
  assert [x[0] for x in a] == [x[0] for x in b]
  for (_, audio_a), (_, audio_b) in zip(a, b):
    np.testing.assert_array_equal(audio_a, audio_b)
  assert [x[0] for x in a] != [x[0] for x in c]


def test_eval_mode_centre_crops_each_clip_once(data_dir):
  ds = input_pipeline.make_dataset(data_dir, "eval", batch_size=4, crop_seconds=CROP_S, mode="eval")
  sizes, ids = [], []
  for batch in ds:
    _check_batch(batch, centre=True)
    sizes.append(batch["audio"].shape[0])
    ids += [_index(i) for i in batch["id"].numpy()]
  assert sorted(ids) == list(range(24, 34)) and sizes == [4, 4, 2]


def test_full_clip_mode_pads_to_the_longest_and_reports_lengths(data_dir):
  ds = input_pipeline.make_dataset(data_dir, "eval", batch_size=3, crop_seconds=CROP_S,
                                   mode="full_clip")
  ids = []
  for batch in ds:
    audio, lengths = batch["audio"].numpy(), batch["num_samples"].numpy()
    assert batch["num_samples"].dtype == tf.int32 and audio.shape[1] == lengths.max()
    for row, example_id in enumerate(batch["id"].numpy()):
      clip = _clip(_index(example_id))
      assert lengths[row] == clip.size
      np.testing.assert_array_equal(audio[row, :clip.size], clip)
      assert not audio[row, clip.size:].any()
      ids.append(_index(example_id))
  assert sorted(ids) == list(range(24, 34))


def test_mixup_mixes_audio_and_labels_with_the_same_lambda(data_dir):
  kwargs = dict(batch_size=6, crop_seconds=CROP_S, mode="train", seed=11)
  plain = next(iter(input_pipeline.make_dataset(data_dir, "train", **kwargs)))
  mixed = next(iter(input_pipeline.make_dataset(data_dir, "train", mixup_alpha=0.4, **kwargs)))
  assert plain["id"].numpy().tolist() == mixed["id"].numpy().tolist()
  a, y = plain["audio"].numpy().astype(np.float64), plain["labels"].numpy()
  partner_a, partner_y = np.roll(a, 1, axis=0), np.roll(y, 1, axis=0)
  lams = []
  for row in range(6):
    diff = a[row] - partner_a[row]
    lam = np.dot(mixed["audio"].numpy()[row] - partner_a[row], diff) / np.dot(diff, diff)
    np.testing.assert_allclose(mixed["audio"].numpy()[row],
                               lam * a[row] + (1 - lam) * partner_a[row], atol=1e-5)
    np.testing.assert_allclose(mixed["labels"].numpy()[row],
                               lam * y[row] + (1 - lam) * partner_y[row], atol=1e-5)
    lams.append(lam)
  assert all(0 <= lam <= 1 for lam in lams) and np.std(lams) > 0.01


@pytest.mark.parametrize("pipelines", [2, 3])      # 2: file sharding; 3 > 2 files: example sharding
def test_input_context_shards_are_disjoint_and_complete(data_dir, pipelines):
  per_pipeline = []
  for pipeline_id in range(pipelines):
    context = tf.distribute.InputContext(num_input_pipelines=pipelines,
                                         input_pipeline_id=pipeline_id, num_replicas_in_sync=1)
    ds = input_pipeline.make_dataset(data_dir, "eval", batch_size=2, crop_seconds=CROP_S,
                                     mode="eval", input_context=context)
    per_pipeline.append([_index(i) for b in ds for i in b["id"].numpy()])
  flat = [k for ids in per_pipeline for k in ids]
  assert sorted(flat) == list(range(24, 34)) and all(per_pipeline)


def test_bad_arguments_are_named(data_dir, tmp_path):
  common = dict(batch_size=2, crop_seconds=CROP_S)
  with pytest.raises(ValueError, match="mode='test'"):
    input_pipeline.make_dataset(data_dir, "eval", mode="test", **common)
  with pytest.raises(ValueError, match=r"split 'valid' not in .*has: \['eval', 'train'\]"):
    input_pipeline.make_dataset(data_dir, "valid", mode="eval", **common)
  with pytest.raises(FileNotFoundError, match="dataset_info.json not found"):
    input_pipeline.make_dataset(str(tmp_path), "eval", mode="eval", **common)
  with pytest.raises(ValueError, match="crop_seconds > 0"):
    input_pipeline.make_dataset(data_dir, "eval", mode="eval", batch_size=2, crop_seconds=0)


@pytest.mark.slow
def test_pipeline_under_mirrored_strategy_with_two_logical_cpus(data_dir):
  script = os.path.join(ROOT, "tests", "train", "data", "mirrored_pipeline.py")
  result = subprocess.run([sys.executable, script, data_dir], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
  lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
  assert result.returncode == 0 and lines, result.stderr[-2000:]
  out = json.loads(lines[0][len("RESULT"):])
  for mode in ("train", "eval"):
    assert out[mode]["replicas"] == 2 and out[mode]["shapes"] == [[4, CROP], [4, CROP]]
    assert out[mode]["labels_sum"] >= 8            # each clip has >= 1 label


def test_train_mode_example_sharding_is_disjoint_without_a_seed(data_dir):
  # 5 pipelines > 4 train shards: records are dealt out; unseeded shuffles must not overlap them
  firsts = []
  for pipeline_id in range(5):
    context = tf.distribute.InputContext(num_input_pipelines=5, input_pipeline_id=pipeline_id)
    ds = input_pipeline.make_dataset(data_dir, "train", batch_size=2, crop_seconds=CROP_S,
                                     mode="train", input_context=context)
    ids = {_index(i) for b in ds.take(12) for i in b["id"].numpy()}    # 24 draws, repeated
    firsts.append(ids)
  assert all(firsts) and sum(len(x) for x in firsts) == 24 and set().union(*firsts) == set(range(24))


@pytest.mark.parametrize("offset_s,expected", [
    (0.0, [1, 0, 0]),      # event 0 spans 0.2-0.9 s: overlap 0.3 s
    (0.85, [0, 0, 1]),     # event 0 overlap 0.05 s < 0.1 s; event 2 (0.05 s long) fully inside
    (1.5, [0, 1, 0]),      # event 1 spans 1.8-2.5 s; event 2 at 1.30-1.35 s lies before the crop
    (2.45, [0, 0, 0]),     # event 1 overlaps 0.05 s only
])
def test_crop_labels_are_the_events_heard_in_the_crop(offset_s, expected):
  x = {"labels": tf.constant([1.0, 1.0, 1.0]),
       "event_labels": tf.constant([0, 1, 2], tf.int64),
       "event_start_s": tf.constant([0.2, 1.8, 1.30]),
       "event_end_s": tf.constant([0.9, 2.5, 1.35])}
  if offset_s == 0.85:     # move the short event inside [0.85, 1.35)
    x["event_start_s"] = tf.constant([0.2, 1.8, 1.0])
    x["event_end_s"] = tf.constant([0.9, 2.5, 1.05])
  labels = input_pipeline.crop_labels(x, tf.constant(int(offset_s * 16000)), 8000, 16000, 3)
  np.testing.assert_array_equal(labels.numpy(), expected)


def test_crop_labels_without_events_are_the_clip_labels():
  x = {"labels": tf.constant([0.0, 1.0]), "event_labels": tf.zeros([0], tf.int64),
       "event_start_s": tf.zeros([0]), "event_end_s": tf.zeros([0])}
  labels = input_pipeline.crop_labels(x, tf.constant(4000), 8000, 16000, 2)
  np.testing.assert_array_equal(labels.numpy(), [0.0, 1.0])


# ---------------------------------------------------------------- damaged folders

def _copy(data_dir, tmp_path):
  import shutil
  out = str(tmp_path / "copy")
  shutil.copytree(data_dir, out)
  return out


def _eval_ids(data_dir):
  ds = input_pipeline.make_dataset(data_dir, "eval", batch_size=4, crop_seconds=CROP_S, mode="eval")
  return [_index(i) for b in ds for i in b["id"].numpy()]


def _shard(data_dir, split, k):
  return os.path.join(data_dir, dataset_info.read(data_dir)["splits"][split]["files"][k])


def _records(path):
  return [r.numpy() for r in tf.data.TFRecordDataset(path)]


def _rewrite(path, records):
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)


def test_a_shard_cut_to_half_is_refused_naming_it(data_dir, tmp_path):
  out = _copy(data_dir, tmp_path)
  shard = _shard(out, "eval", 1)
  records = _records(shard)
  _rewrite(shard, records[:len(records) // 2])          # whole records: TF reads it silently
  with pytest.raises(dataset_info.DataError, match=rf"shard {shard} holds \d+ bytes, data prep "
                                                   r"wrote \d+ \(truncated\)"):
    _eval_ids(out)
  os.remove(shard)
  with pytest.raises(FileNotFoundError, match=rf"shard {shard} listed in .*dataset_info.json is "
                                               "missing"):
    _eval_ids(out)
  with pytest.raises(FileNotFoundError, match=rf"shard {shard} listed"):   # what a trainer runs
    input_pipeline.check_data(out, dataset_info.read(out), ["train", "eval"])


@pytest.mark.parametrize("damage", ["flip_a_byte", "cut_after_opening"])
def test_a_shard_damaged_while_read_fails_naming_it(data_dir, tmp_path, damage):
  out = _copy(data_dir, tmp_path)
  shard = _shard(out, "eval", 1)
  ds = input_pipeline.make_dataset(out, "eval", batch_size=4, crop_seconds=CROP_S, mode="eval")
  data = open(shard, "rb").read()
  if damage == "flip_a_byte":                # same size, CRC mismatch: TF's DataLossError
    data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:]
  else:                                      # cut at a record boundary once the checks ran
    _rewrite(shard, _records(shard)[:2])
    data = open(shard, "rb").read()
  with open(shard, "wb") as f:
    f.write(data)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=rf"shard {shard} holds \d readable records, data prep wrote 5 "
                           r"\(truncated or corrupt\)"):
    for _ in ds:
      pass


@pytest.mark.parametrize("edit,error,message", [
    (lambda info: {}, dataset_info.DataError, r"dataset_info.json: no 'classes' key"),
    (lambda info: {**info, "sample_rate": "16k"}, dataset_info.DataError,
     r"'sample_rate' is '16k', not a positive integer"),
    (lambda info: {**info, "classes": info["classes"][:1] + [
        {**info["classes"][1], "display_name": "C0"}] + info["classes"][2:]},
     dataset_info.DataError, r"dataset_info.json: class 1: duplicate class display names"),
    (lambda info: {**info, "sample_rate": 8000}, dataset_info.DataError,
     r"shard .*eval-00000-of-00002.tfrecord holds 16000 Hz audio but .*dataset_info.json says "
     r"8000 Hz"),
])
def test_a_damaged_or_edited_dataset_info_is_one_clear_error(data_dir, tmp_path, edit, error,
                                                             message):
  out = _copy(data_dir, tmp_path)
  info = dataset_info.read(out)
  with open(dataset_info.path(out), "w") as f:
    json.dump(edit(info), f)
  with pytest.raises(error, match=message):
    _eval_ids(out)


def test_an_incomplete_folder_is_refused(data_dir, tmp_path):
  out = _copy(data_dir, tmp_path)
  with open(dataset_info.marker_path(out), "w") as f:
    f.write("")
  with pytest.raises(dataset_info.DataError, match=rf"{out} is incomplete: data prep was "
                                                   r"interrupted"):
    _eval_ids(out)


def test_every_records_rate_is_checked_against_dataset_info(data_dir, tmp_path):
  out = _copy(data_dir, tmp_path)
  shard = _shard(out, "eval", 1)               # not the first shard: only the graph sees it
  records = []
  for record in _records(shard):
    example = tf.train.Example.FromString(record)
    wav = bytearray(example.features.feature["audio"].bytes_list.value[0])
    wav[24:32] = (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")   # rate, bytes/s
    example.features.feature["audio"].bytes_list.value[0] = bytes(wav)
    records.append(example.SerializeToString())
  _rewrite(shard, records)                     # same size and count
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"example clip\d+ holds 8000 Hz audio but .*dataset_info.json says "
                           r"16000 Hz"):
    _eval_ids(out)


def test_the_frontend_rate_must_be_the_datas(data_dir):
  info = dataset_info.read(data_dir)
  dataset_info.check_frontend_rate(RATE, info, data_dir)
  with pytest.raises(dataset_info.DataError, match=r"the frontend runs at 8000 Hz .* says the "
                                                   r"audio is 16000 Hz"):
    dataset_info.check_frontend_rate(8000, info, data_dir)
