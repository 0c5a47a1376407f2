"""SpecAugment (Park et al. 2019) on frontend features, zero-filled masks, no lingvo.

features [batch, frames, bins] -> same shape, with `num_freq_masks` bands of bins and
`num_time_masks` spans of frames set to zero, drawn independently per example and mask.
Identity when not training. Two laws for a band on an axis of L positions, at most W wide:

  sampling="independent" (Park et al.):  w ~ U{0, ..., W},  start ~ U{0, ..., L - w},
      independent; positions start <= p < start + w.
  sampling="audax" (SarthakYadav/audax's transforms/spec_augment.py, the seed's runs): one
      u ~ U[0, 1) gives both, w = u W and start = u (L - w) (audax draws its width and its
      start from the same random key), positions p with start <= p < start + w. The mean
      width is W / 2 in both laws, but audax's narrow bands sit near the axis' start and its
      wide ones near its end.

The masks are drawn with stateless random ops from a seed the caller may pass
(the trainer passes one derived from the global step, so a resumed run draws the
same masks as an unkilled one); without a seed the layer draws one itself.
"""
import tensorflow as tf
import tf_keras

# Philox named, not "auto_select": XLA's auto choice is another generator. TF's float
# uniform is the low 23 bits of a uint32 / 2^23, which XLA does not reproduce; drawn as an
# int below 2^23 and scaled, the numbers are the same bits with and without XLA.
_ALG = "philox"
_MANTISSA = 2**23
SAMPLING_LAWS = ("independent", "audax")


def _uniform(shape, seed):
  """U[0, 1) float32 equal bit for bit to tf.random.stateless_uniform(shape, seed), also
  under XLA (jit_compile)."""
  bits = tf.random.stateless_uniform(shape, seed, minval=0, maxval=_MANTISSA, dtype=tf.int32,
                                     alg=_ALG)
  return tf.cast(bits, tf.float32) / _MANTISSA


def _band(seeds, batch_size, length, max_width, sampling):
  """[batch, length] bool, True inside one random band per example (the laws: module doc)."""
  if sampling == "audax":
    positions = tf.cast(tf.range(length), tf.float32)[tf.newaxis, :]
    u = _uniform([batch_size, 1], seeds[1])
    width = u * float(max_width)
    start = u * (tf.cast(length, tf.float32) - width)
    return (positions >= start) & (positions < start + width)
  positions = tf.range(length)[tf.newaxis, :]
  width = tf.random.stateless_uniform(
      [batch_size, 1], seeds[1], minval=0, maxval=max_width + 1, dtype=tf.int32, alg=_ALG)
  width = tf.minimum(width, length)
  start = tf.cast(
      _uniform([batch_size, 1], seeds[2]) *
      tf.cast(length - width + 1, tf.float32), tf.int32)
  return (positions >= start) & (positions < start + width)


def _band_mask(seed, batch_size, length, max_width, num_masks, sampling):
  """[batch, length] float mask, 0 inside `num_masks` random bands, 1 elsewhere."""
  mask = tf.ones([batch_size, length], tf.float32)
  for _ in range(num_masks):
    seeds = tf.random.experimental.stateless_split(seed, 3, alg=_ALG)
    seed = seeds[0]
    mask *= 1.0 - tf.cast(_band(seeds, batch_size, length, max_width, sampling), tf.float32)
  return mask


@tf_keras.utils.register_keras_serializable(package="train")
class SpecAugment(tf_keras.layers.Layer):
  """Frequency and time masking.  [batch, frames, bins] -> [batch, frames, bins]."""

  def __init__(self, num_freq_masks: int = 2, max_freq_width: int = 8,
               num_time_masks: int = 2, max_time_width: int = 50,
               sampling: str = "independent", **kwargs):
    super().__init__(**kwargs)
    if sampling not in SAMPLING_LAWS:
      raise ValueError(f"SpecAugment sampling={sampling!r}; choose one of {SAMPLING_LAWS}")
    for name, value in (("num_freq_masks", num_freq_masks),
                        ("max_freq_width", max_freq_width),
                        ("num_time_masks", num_time_masks),
                        ("max_time_width", max_time_width)):
      if value < 0:
        raise ValueError(f"SpecAugment {name} must be >= 0, got {value}")
    self.num_freq_masks = num_freq_masks
    self.max_freq_width = max_freq_width
    self.num_time_masks = num_time_masks
    self.max_time_width = max_time_width
    self.sampling = sampling

  def call(self, features, training=False, seed=None):
    if not training:
      return features
    if seed is None:
      seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seed = tf.cast(seed, tf.int32)
    freq_seed, time_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2, alg=_ALG))
    shape = tf.shape(features)
    batch_size, frames, bins = shape[0], shape[1], shape[2]
    freq_mask = _band_mask(freq_seed, batch_size, bins, self.max_freq_width,
                           self.num_freq_masks, self.sampling)
    time_mask = _band_mask(time_seed, batch_size, frames, self.max_time_width,
                           self.num_time_masks, self.sampling)
    mask = time_mask[:, :, tf.newaxis] * freq_mask[:, tf.newaxis, :]
    return features * tf.cast(mask, features.dtype)

  def get_config(self):
    return {**super().get_config(),
            "num_freq_masks": self.num_freq_masks,
            "max_freq_width": self.max_freq_width,
            "num_time_masks": self.num_time_masks,
            "max_time_width": self.max_time_width,
            "sampling": self.sampling}
