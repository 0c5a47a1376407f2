"""tf.data input pipeline over prepare_data's shards (layout: train/data/tfrecords.py).

  ds = make_dataset(data_dir, "train", batch_size=32, crop_seconds=5.0, mode="train", seed=0)
  {"audio": [B, crop_samples] float32 in [-1, 1], "labels": [B, C] float32 multi-hot, "id": [B] string}

Modes:
  train      shuffle files, interleave, shuffle examples, repeat (each epoch whole), random crop, batch (drop remainder),
             optional mixup (per-example lambda ~ Beta(alpha, alpha), partner = the batch rolled by one)
  eval       files in order, one pass, centre crop, last batch kept
  full_clip  files in order, one pass, whole clips padded to the longest in the batch, plus
             "num_samples": [B] int32 (each clip's true length)
Crops shorter clips are zero-padded at the end. A crop's labels are the clip's, unless the example
has strong labels (events: class, start, end): then they are the classes whose events overlap the
crop by at least min(MIN_EVENT_OVERLAP_SECONDS, the event's length). Whole clips keep clip labels. With `seed` set the output is deterministic (crop
offsets are stateless functions of seed and position); without it, crops and order vary per run.
Under tf.distribute, pass the InputContext (distribute_datasets_from_function): files are sharded by
input_pipeline_id (examples, if there are fewer files than pipelines) and batch_size is per replica.
audax-layout TFRecords (FLAC bytes, `label`) are not read here: convert them once with
`python -m train.data.prepare_data --audax_tfrecords=...` (TF has no in-graph FLAC decoder).

The folder is checked when the dataset is made (dataset_info.read, check_shards: every shard
present with the size prep wrote; the first record's sample rate); while it is read, every record's
WAV rate is checked against dataset_info.json and every shard's record count against what prep
wrote, so a shard damaged mid-epoch stops with an InvalidArgumentError naming it.
"""
import functools
from typing import Optional

import tensorflow as tf

from train.data import dataset_info
from train.data import tfrecords

MODES = ("train", "eval", "full_clip")
SHUFFLE_BUFFER = 1024          # examples; each is its WAV bytes, ~160 kB for 5 s at 16 kHz
CYCLE_LENGTH = 8               # shards read concurrently in training
MIN_EVENT_OVERLAP_SECONDS = 0.1


def crop_or_pad(audio: tf.Tensor, crop_samples: int, offset: tf.Tensor) -> tf.Tensor:
  """[T] -> [crop_samples]: audio[offset : offset + crop], zero-padded at the end if short."""
  padded = tf.pad(audio, [[0, tf.maximum(crop_samples - tf.shape(audio)[0], 0)]])
  out = padded[offset:offset + crop_samples]
  out.set_shape([crop_samples])
  return out


def crop_length_samples(crop_seconds: float, sample_rate: int) -> int:
  """The length of a crop in samples: what training crops, eval centre-crops and export feeds."""
  return int(round(crop_seconds * sample_rate))


def max_offset(num_samples: tf.Tensor, crop_samples: int) -> tf.Tensor:
  return tf.maximum(num_samples - crop_samples, 0)


def centre_offset(num_samples, crop_samples: int):
  """Where a centre crop starts (0 when the clip is shorter): tensors or Python ints."""
  return max_offset(num_samples, crop_samples) // 2


def multi_hot(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
  """int [n] -> float32 [num_classes] with ones at `labels` (repeats count once; n may be 0)."""
  counts = tf.reduce_sum(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=0)
  return tf.minimum(counts, 1.0)


def crop_labels(x: dict, offset: tf.Tensor, crop_samples: int, sample_rate: int,
                num_classes: int) -> tf.Tensor:
  """float32 [num_classes]: the labels of audio[offset : offset + crop_samples] (module doc)."""
  crop_start_s = tf.cast(offset, tf.float32) / sample_rate
  crop_end_s = crop_start_s + crop_samples / sample_rate
  overlap_s = (tf.minimum(x["event_end_s"], crop_end_s)
               - tf.maximum(x["event_start_s"], crop_start_s))
  needed_s = tf.minimum(MIN_EVENT_OVERLAP_SECONDS, x["event_end_s"] - x["event_start_s"])
  heard = tf.boolean_mask(x["event_labels"], overlap_s >= needed_s)
  has_events = tf.size(x["event_labels"]) > 0
  return tf.where(has_events, multi_hot(heard, num_classes), x["labels"])


def _decode(serialized, num_classes, sample_rate, info_path):
  parsed = tfrecords.parse_example(serialized)
  audio, rate = tf.audio.decode_wav(parsed["audio"], desired_channels=1)
  # every record's WAV header against dataset_info.json: a wrong rate would shift every frequency
  check = tf.debugging.Assert(tf.equal(rate, sample_rate), [tf.strings.join([
      "example ", parsed["id"], " holds ", tf.strings.as_string(rate), " Hz audio but ",
      info_path, f" says {sample_rate} Hz; rerun data prep"])], summarize=1)
  with tf.control_dependencies([check]):
    audio = tf.identity(audio)
  return {"audio": audio[:, 0], "labels": multi_hot(parsed["labels"], num_classes),
          "id": parsed["id"], "event_labels": parsed["event_labels"],
          "event_start_s": parsed["event_start_s"], "event_end_s": parsed["event_end_s"]}


def _without_events(x):
  return {k: v for k, v in x.items() if not k.startswith("event_")}


def mixup(batch: dict, alpha: float, seed: Optional[tf.Tensor] = None) -> dict:
  """x = lam * x + (1 - lam) * roll(x, 1) per example, same for labels; lam ~ Beta(alpha, alpha)."""
  size = tf.shape(batch["audio"])[:1]
  if seed is None:
    g1, g2 = tf.random.gamma(size, alpha), tf.random.gamma(size, alpha)
  else:
    g1 = tf.random.stateless_gamma(size, seed, alpha)
    g2 = tf.random.stateless_gamma(size, seed + tf.constant([0, 1], tf.int64), alpha)
  lam = g1 / tf.maximum(g1 + g2, 1e-12)
  out = dict(batch)
  for key in ("audio", "labels"):
    x = batch[key]
    out[key] = lam[:, None] * x + (1.0 - lam[:, None]) * tf.roll(x, 1, axis=0)
  return out


def _files(data_dir, info, split):
  """-> (shard paths, records prep wrote into each or -1), after dataset_info.check_shards and a
  look at the first record's sample rate."""
  if split not in info["splits"]:
    raise ValueError(f"split {split!r} not in {dataset_info.path(data_dir)} "
                     f"(has: {sorted(info['splits'])})")
  files = dataset_info.check_shards(data_dir, info, split)
  if not files:
    raise ValueError(f"split {split!r} of {data_dir} has no shards (everything skipped?)")
  _check_first_rate(files[0], info, data_dir)
  return files, dataset_info.shard_examples(info, split)


def check_data(data_dir: str, info: dict, splits) -> None:
  """The checks make_dataset runs on a split's shards (present, the size prep wrote, the first
  record's rate), for `splits` at once: a trainer calls it before it writes anything."""
  for split in splits:
    _files(data_dir, info, split)


def _check_first_rate(shard: str, info: dict, data_dir: str) -> None:
  """DataError naming the shard and dataset_info.json when the first record's WAV header
  disagrees with the folder's sample rate (the graph checks every record; this says it before
  a model is built)."""
  try:
    first = next(iter(tf.data.TFRecordDataset(shard).take(1)), None)
  except tf.errors.OpError as e:
    raise dataset_info.DataError(f"shard {shard} is unreadable ({e.message.splitlines()[0]}); "
                                 "rerun data prep") from None
  if first is None:
    return
  wav = tfrecords.parse_example(first)["audio"].numpy()
  rate = int.from_bytes(wav[24:28], "little") if wav[:4] == b"RIFF" and len(wav) >= 28 else None
  if rate != info["sample_rate"]:
    raise dataset_info.DataError(
        f"shard {shard} holds {rate} Hz audio but {dataset_info.path(data_dir)} says "
        f"{info['sample_rate']} Hz; rerun data prep into that folder")


def _fail(message: tf.Tensor) -> tf.Tensor:
  """Graph op: raises InvalidArgumentError with `message` (a string tensor) when it runs."""
  with tf.control_dependencies([tf.debugging.Assert(False, [message], summarize=1)]):
    return tf.constant(False)


def _read_shard(path: tf.Tensor, expected: tf.Tensor) -> tf.data.Dataset:
  """The records of a shard that should hold `expected` (what data prep wrote): one that holds
  fewer readable records (truncated, or corrupt mid-file: DataLossError) fails at its end with
  an error naming it, instead of being read silently short or failing without its name."""
  # an empty record marks the end (a serialized Example of ours is never empty)
  records = tf.data.TFRecordDataset(path).ignore_errors().concatenate(
      tf.data.Dataset.from_tensors(tf.constant(b"")))

  def count(n, record):
    is_end = tf.equal(tf.strings.length(record), 0)
    short = tf.logical_and(is_end, tf.not_equal(n, expected))
    # the message is built only for a short shard (per record it would cost more than the read)
    checked = tf.cond(short, lambda: _fail(tf.strings.join([
        "shard ", path, " holds ", tf.strings.as_string(n), " readable records, data prep wrote ",
        tf.strings.as_string(expected), " (truncated or corrupt); rerun data prep"])),
        lambda: tf.constant(True))
    with tf.control_dependencies([checked]):
      return n + 1, tf.identity(record)

  return records.scan(tf.constant(0, tf.int64), count).filter(
      lambda record: tf.strings.length(record) > 0)


def make_dataset(data_dir: str, split: str, *, batch_size: int, crop_seconds: float,
                 mode: str, seed: Optional[int] = None, mixup_alpha: float = 0.0,
                 input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
  """Batches of {"audio", "labels", "id"} (+ "num_samples" in full_clip mode); see module doc."""
  if mode not in MODES:
    raise ValueError(f"mode={mode!r}; expected one of {MODES}")
  if batch_size < 1 or crop_seconds <= 0 or mixup_alpha < 0:
    raise ValueError(f"need batch_size >= 1, crop_seconds > 0, mixup_alpha >= 0; got "
                     f"{batch_size}, {crop_seconds}, {mixup_alpha}")
  info = dataset_info.read(data_dir)
  num_classes = len(info["classes"])
  num_crop_samples = crop_length_samples(crop_seconds, info["sample_rate"])
  files, counts = _files(data_dir, info, split)
  training = mode == "train"
  num_pipelines, pipeline_id = 1, 0
  if input_context is not None:
    num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
  shard_examples = num_pipelines > 1 and len(files) < num_pipelines
  if num_pipelines > 1 and not shard_examples:
    files, counts = files[pipeline_id::num_pipelines], counts[pipeline_id::num_pipelines]
  base_seed = None if seed is None else int(seed) * 1_000_003 + pipeline_id

  options = tf.data.Options()
  options.deterministic = seed is not None or not training
  ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(counts, tf.int64)))
  read = (_read_shard if min(counts) >= 0     # a folder without per-shard counts: read as is
          else lambda path, expected: tf.data.TFRecordDataset(path))
  # files in order, one after the other; the next ones are opened (and counted) in parallel
  in_order = functools.partial(ds.interleave, read, cycle_length=1, deterministic=True,
                               num_parallel_calls=tf.data.AUTOTUNE)
  if shard_examples:             # same fixed record order in every pipeline, so shards are disjoint
    ds = in_order().shard(num_pipelines, pipeline_id)
  elif training:
    ds = ds.shuffle(len(files), seed=base_seed, reshuffle_each_iteration=True)
    ds = ds.interleave(read, cycle_length=min(len(files), CYCLE_LENGTH),
                       block_length=1, num_parallel_calls=tf.data.AUTOTUNE)
  else:
    ds = in_order()
  if training:                   # shuffle before repeat: every epoch is seen whole
    ds = ds.shuffle(SHUFFLE_BUFFER, seed=base_seed, reshuffle_each_iteration=True).repeat()
  ds = ds.map(lambda s: _decode(s, num_classes, info["sample_rate"], dataset_info.path(data_dir)),
              num_parallel_calls=tf.data.AUTOTUNE)

  if mode == "full_clip":
    ds = ds.map(lambda x: {**_without_events(x),
                           "num_samples": tf.shape(x["audio"], out_type=tf.int32)[0]})
    ds = ds.padded_batch(batch_size)
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

  crop = functools.partial(_crop, crop_samples=num_crop_samples, sample_rate=info["sample_rate"],
                           num_classes=num_classes)
  if training and base_seed is not None:
    ds = ds.enumerate().map(
        lambda i, x: crop(x, seed=tf.stack([tf.constant(base_seed, tf.int64), i])),
        num_parallel_calls=tf.data.AUTOTUNE)
  elif training:
    ds = ds.map(lambda x: crop(x, seed=None), num_parallel_calls=tf.data.AUTOTUNE)
  else:
    ds = ds.map(lambda x: crop(x, centre=True), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=training)
  if training and mixup_alpha > 0:
    if base_seed is None:
      ds = ds.map(lambda b: mixup(b, mixup_alpha))
    else:
      ds = ds.enumerate().map(lambda i, b: mixup(
          b, mixup_alpha, tf.stack([tf.constant(base_seed + 1, tf.int64), 2 * i])))
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _crop(x, *, crop_samples, sample_rate, num_classes, seed=None, centre=False):
  """A random (seeded or not) or centre crop of x["audio"], with the crop's labels."""
  limit = max_offset(tf.shape(x["audio"])[0], crop_samples)
  if centre:
    offset = centre_offset(tf.shape(x["audio"])[0], crop_samples)
  elif seed is None:
    offset = tf.random.uniform([], 0, limit + 1, dtype=tf.int32)
  else:
    offset = tf.random.stateless_uniform([], seed, 0, limit + 1, dtype=tf.int32)
  labels = crop_labels(x, offset, crop_samples, sample_rate, num_classes)
  return {**_without_events(x), "audio": crop_or_pad(x["audio"], crop_samples, offset),
          "labels": labels}
