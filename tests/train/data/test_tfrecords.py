"""tfrecords: the hand-spliced Example bytes equal protobuf's own deterministic serialization."""
import numpy as np
import pytest
import tensorflow as tf

from train.data import tfrecords


def _protobuf_serialized(wav, labels, example_id, events):
  """The reference: the whole Example built as a message and serialized by protobuf."""
  ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))
  floats = lambda v: tf.train.Feature(float_list=tf.train.FloatList(value=list(v)))
  feature = {"audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[wav])),
             "labels": ints(labels),
             "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example_id.encode()]))}
  if events:
    feature.update(event_labels=ints(e[0] for e in events),
                   event_start_s=floats(e[1] for e in events),
                   event_end_s=floats(e[2] for e in events))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
      deterministic=True)


@pytest.mark.parametrize("num_bytes", [0, 1, 127, 128, 16383, 16384, 2_000_003])
@pytest.mark.parametrize("labels,example_id,events", [
    ((0,), "x", ()), ((1, 5, 300), "é" * 200, ((1, 0.5, 1.5), (2, 0.0, 3.25))), ((), "", ())])
def test_make_example_is_protobufs_serialization(num_bytes, labels, example_id, events):
  wav = np.random.default_rng(num_bytes).integers(0, 256, num_bytes, dtype=np.uint8).tobytes()
  serialized = tfrecords.make_example(wav, labels, example_id, events)
  assert serialized == _protobuf_serialized(wav, labels, example_id, events)
  parsed = tfrecords.parse_example(tf.constant(serialized))
  assert parsed["audio"].numpy() == wav and parsed["labels"].numpy().tolist() == list(labels)
