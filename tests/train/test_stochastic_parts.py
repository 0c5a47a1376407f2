"""The recipe's stochastic parts in law (not bits) against the seed's (SarthakYadav/audax).

audax's draws are written here from its code (transforms/spec_augment.py, models/efficientnet.py,
models/classifier.py at 91bfde5) as numpy references; ours are sampled from our layers. Masks
are compared by the probability that each position is masked and by the distribution of a
band's width, over N examples, within 6 binomial standard deviations (a different law, e.g.
the independent one against audax's, is off by 15 to 40 of them).
"""
import numpy as np
import pytest
import tensorflow as tf
from official.vision.modeling.layers import nn_blocks

from train import models
from train import spec_augment
from tests import harness
from train.configs import audioset

N = 20000
SIGMAS = 6.0


def _independent_band(rng, n, length, max_width):
  width = np.minimum(rng.integers(0, max_width + 1, size=(n, 1)), length)
  start = np.floor(rng.random((n, 1)) * (length - width + 1))
  positions = np.arange(length)[np.newaxis]
  return (positions >= start) & (positions < start + width)


def _audax_band(rng, n, length, max_width):
  """audax's mask_along_axis_iid: one uniform draw (its two draws share a key) gives both."""
  u = rng.random((n, 1))
  width = u * max_width
  start = u * (length - width)
  positions = np.arange(length)[np.newaxis]
  return (positions >= start) & (positions < start + width)


REFERENCES = {"independent": _independent_band, "audax": _audax_band}


def _reference_mask(sampling, n, length, max_width, num_masks, seed):
  rng = np.random.default_rng(seed)
  masked = np.zeros((n, length), bool)
  for _ in range(num_masks):
    masked |= REFERENCES[sampling](rng, n, length, max_width)
  return masked


def _our_masks(sampling, axis, length, num_masks, max_width):
  """[N, length] bool: the positions our layer masks on `axis` ("time" or "freq")."""
  time = axis == "time"
  layer = spec_augment.SpecAugment(num_freq_masks=0 if time else num_masks,
                                   max_freq_width=max_width,
                                   num_time_masks=num_masks if time else 0,
                                   max_time_width=max_width, sampling=sampling)
  shape = [N, length, 1] if time else [N, 1, length]
  out = layer(tf.ones(shape), training=True, seed=tf.constant([3, 4])).numpy()
  return out.reshape(N, length) == 0


def _assert_same_coverage(ours, reference):
  p_ref = reference.mean(axis=0)
  p_ours = ours.mean(axis=0)
  sigma = np.sqrt(np.maximum(p_ref * (1 - p_ref), 1 / N) / N) * np.sqrt(2)
  worst = np.max(np.abs(p_ours - p_ref) / sigma)
  assert worst < SIGMAS, (worst, np.round(p_ours, 3), np.round(p_ref, 3))


def _assert_same_width_law(ours, reference, max_width):
  """Histogram of the number of masked positions per example (one band each)."""
  bins = np.arange(max_width + 2)
  h_ours = np.histogram(ours.sum(axis=1), bins)[0] / N
  h_ref = np.histogram(reference.sum(axis=1), bins)[0] / N
  sigma = np.sqrt(np.maximum(h_ref * (1 - h_ref), 1 / N) / N) * np.sqrt(2)
  worst = np.max(np.abs(h_ours - h_ref) / sigma)
  assert worst < SIGMAS, (worst, h_ours, h_ref)


@pytest.mark.parametrize("sampling", spec_augment.SAMPLING_LAWS)
def test_one_band_has_the_laws_width_and_position(sampling):
  # AudioSet's shape: 500 frames of a 5 s crop, 64 bins; audax's recipe widths 50 and 8.
  for axis, length, width in (("time", 500, 50), ("freq", 64, 8)):
    ours = _our_masks(sampling, axis, length, 1, width)
    reference = _reference_mask(sampling, N, length, width, 1, seed=length)
    _assert_same_width_law(ours, reference, width)
    _assert_same_coverage(ours, reference)


def test_the_two_laws_are_told_apart():
  """The comparison can fail: our independent bands against audax's law."""
  time_masked = _our_masks("independent", "time", 500, 1, 50)
  with pytest.raises(AssertionError):
    _assert_same_coverage(time_masked, _reference_mask("audax", N, 500, 50, 1, seed=1))


def test_the_recipes_two_masks_per_axis_in_audax_law():
  """audioset.py:leaf,audax draws audax's law: 2 freq bands (<= 8 bins) and 2 time spans
  (<= 50 frames) per example, after the frontend."""
  kwargs = audioset.get_config("leaf,audax").model.spec_augment.to_dict()
  assert kwargs == dict(enabled=True, num_freq_masks=2, max_freq_width=8, num_time_masks=2,
                        max_time_width=50, sampling="audax")
  time_masked = _our_masks("audax", "time", 500, 2, 50)
  freq_masked = _our_masks("audax", "freq", 64, 2, 8)
  _assert_same_coverage(time_masked, _reference_mask("audax", N, 500, 50, 2, seed=7))
  _assert_same_coverage(freq_masked, _reference_mask("audax", N, 64, 8, 2, seed=8))


def test_efficientnet_b0_drop_path_is_audaxs_schedule():
  """audax: block i of 16 (all blocks counted from 0) drops with 0.2 i / 16 where it has a
  residual (stride 1, same width); B0's stages (repeats, stride, in -> out channels)."""
  stages = [(1, 1, 32, 16), (2, 2, 16, 24), (2, 2, 24, 40), (3, 2, 40, 80), (3, 1, 80, 112),
            (4, 2, 112, 192), (1, 1, 192, 320)]
  expected, i = [], 0
  for repeats, stride, channels_in, channels_out in stages:
    for k in range(repeats):
      residual = (stride if k == 0 else 1) == 1 and (channels_in if k == 0 else channels_out) == channels_out
      expected.append(0.2 * i / 16 if residual else None)
      i += 1
  backbone = models.create_backbone("efficientnet", 64, stochastic_depth=0.2, model_id="b0",
                                    se_ratio=0.25)
  blocks = [layer for layer in backbone.layers
            if isinstance(layer, nn_blocks.InvertedBottleneckBlock)]
  ours = []
  for block in blocks:
    residual = block.get_config()["in_filters"] == block.get_config()["out_filters"] and \
        block.get_config()["strides"] == 1
    ours.append(block.get_config()["stochastic_depth_drop_rate"] if residual else None)
  np.testing.assert_allclose([r for r in ours if r is not None],
                             [r for r in expected if r is not None], rtol=1e-12)
  assert [r is None for r in ours] == [r is None for r in expected]

  # ... and the layer the block calls drops whole examples at that rate.
  block = blocks[14]                                  # 0.2 * 14 / 16 = 0.175
  kept = block._stochastic_depth(tf.ones([N, 1, 1, 1]), training=True).numpy()  # pylint: disable=protected-access
  dropped = float(np.mean(kept == 0))
  assert abs(dropped - 0.175) < SIGMAS * np.sqrt(0.175 * 0.825 / N)
  np.testing.assert_allclose(kept[kept != 0], 1 / 0.825, rtol=1e-6)


def test_head_dropout_is_audaxs_fc_dropout():
  """audax's Classifier: Dropout(fc_drop_rate = 0.4) on the pooled embedding, kept values
  scaled by 1 / 0.6 (inverted dropout in both frameworks); ours at the same place: a model
  whose head is the identity shows the dropped embedding as its logits."""
  config = harness.tiny_config("unused")
  config.model.dropout = audioset.get_config("leaf").model.dropout
  assert config.model.dropout == 0.4
  config.model.spec_augment.enabled = False
  config.model.num_classes = 1
  model = models.build_model(config)
  width = model.head.kernel.shape[0]
  config.model.num_classes = width
  model = models.build_model(config)
  model.head.set_weights([np.eye(width, dtype=np.float32), np.zeros(width, np.float32)])
  waveform = tf.random.stateless_normal([256, 8000], seed=[5, 6])
  outputs = model.compute_outputs(waveform, training=True, augment_seed=tf.constant([1, 2]))
  embedding, logits = outputs["embedding"].numpy(), outputs["logits"].numpy()
  live = np.abs(embedding) > 1e-6
  dropped = np.abs(logits[live]) < 1e-12
  assert abs(dropped.mean() - 0.4) < SIGMAS * np.sqrt(0.4 * 0.6 / live.sum())
  np.testing.assert_allclose(logits[live][~dropped] / embedding[live][~dropped], 1 / 0.6,
                             rtol=1e-5)
