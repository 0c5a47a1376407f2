"""The frontends as Keras 3 layers: `Frontend` compositions and the six named frontends.

A named frontend takes exactly its tf_keras namesake's arguments (`tf_frontends.Leaf` etc.:
see their docstrings): a tf_keras instance of it checks them, holds the defaults, and gives
the blocks, which `from_tf_keras` turns into their Keras 3 twins (`blocks`). Outputs equal
the tf_keras frontend's given the same weights (`transfer_weights`).
"""
import keras
import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import efficient_leaf
from tf_frontends import frontends as tf_keras_frontends
from tf_frontends import mel
from tf_frontends import pooling
from tf_frontends.keras3 import blocks

BLOCKS = ("filterbank", "activation", "pooling", "compression", "preemphasis",
           "normalization")


def as_mono_waveform(inputs, layer_name: str):
  """`composition.as_mono_waveform` on keras.ops: checked, float32 [batch, time, 1]."""
  inputs = keras.ops.convert_to_tensor(inputs)
  dtype = keras.backend.standardize_dtype(inputs.dtype)
  composition.check_waveform(layer_name, "float" in dtype, dtype, tuple(inputs.shape))
  if len(inputs.shape) == 2:
    inputs = inputs[:, :, None]
  return keras.ops.cast(inputs, "float32")


@keras.saving.register_keras_serializable(package=blocks.PACKAGE)
class Frontend(composition.FrontendInterface, composition.ComposedBlocks, keras.layers.Layer):
  """`tf_frontends.Frontend` for Keras 3: the same composition of Keras 3 blocks.

  y = normalization(compression(max(pooling(activation(filterbank(
          preemphasis(x)))), energy_floor)))
  Arguments as `tf_frontends.Frontend`'s, each block a Keras 3 layer (`blocks`, keras.layers).
  """

  def __init__(self, filterbank, activation, pooling, compression, preemphasis=None,
               normalization=None, energy_floor: float = composition.ENERGY_FLOOR,
               sample_rate=None, **kwargs):
    kwargs.setdefault("dtype", "float32")  # filter math stays float32 under mixed precision
    super().__init__(**kwargs)
    composition.assign_blocks(self, filterbank, activation, pooling, compression, preemphasis,
                              normalization, energy_floor, sample_rate)
    self.n_filters = self._energy_shape((None, None, 1))[-1]

  def _energy_shape(self, waveform_shape):
    shape = tuple(waveform_shape)
    for layer in (self._filterbank, self._activation):
      shape = tuple(layer.compute_output_shape(shape))
    return shape

  def build(self, input_shape):
    waveform = (input_shape[0], None, 1)
    # Blocks deserialized from a config come built (Keras 3 saves their build config).
    for layer in (self._preemp, self._filterbank):
      if layer is not None and not layer.built:
        layer.build(waveform)
    energies = self._energy_shape(waveform)
    for layer in (self._pooling, self._compression, self._instance_norm):
      if layer is not None and not layer.built:
        layer.build(energies)

  def call(self, inputs):
    return composition.run_blocks(self, as_mono_waveform(inputs, type(self).__name__),
                                  blocks.SquaredModulus, blocks.array_ops())

  def filter_taps(self):
    taps = getattr(self._filterbank, "complex_taps", None)
    return None if taps is None else taps()

  def compute_output_shape(self, input_shape):
    return tuple(composition.framed_output_shape(input_shape, self.hop,
                                                 self.output_bins).as_list())

  def get_config(self):
    return {**super().get_config(), "energy_floor": self.energy_floor,
            "sample_rate": self.sample_rate,
            **{key: None if getattr(self, key) is None
               else keras.saving.serialize_keras_object(getattr(self, key))
               for key in BLOCKS}}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    for key in BLOCKS:
      if config.get(key) is not None:
        # Built by the frontend's build, not here: their weights' paths then name the block.
        block = {k: v for k, v in config[key].items() if k != "build_config"}
        config[key] = keras.saving.deserialize_keras_object(block)
    return cls(**config)


def convert_block(layer):
  """The Keras 3 twin of a tf_keras block (tf_frontends' or one of the Keras layers used)."""
  if layer is None:
    return None
  common = {"name": layer.name, "trainable": layer.trainable, "dtype": "float32"}
  twin = _BLOCK_TWINS.get(type(layer))
  if twin is not None:
    return twin(**blocks.own_arguments(layer), **common)
  config = layer.get_config()
  if isinstance(layer, tf_keras.layers.LeakyReLU):
    return keras.layers.LeakyReLU(negative_slope=config["alpha"], **common)
  if isinstance(layer, tf_keras.layers.MaxPool1D):
    return keras.layers.MaxPooling1D(config["pool_size"], config["strides"],
                                     padding=config["padding"], **common)
  if isinstance(layer, tf_keras.layers.LayerNormalization):
    return keras.layers.LayerNormalization(
        axis=config["axis"], epsilon=config["epsilon"], center=config["center"],
        scale=config["scale"], **common)
  if isinstance(layer, tf_keras.layers.GroupNormalization):
    return blocks.GroupNormalization(
        groups=config["groups"], axis=config["axis"], epsilon=config["epsilon"],
        center=config["center"], scale=config["scale"], **common)
  if (isinstance(layer, tf_keras.layers.Conv1D) and config["groups"] == 1 and
      not config["use_bias"] and tuple(config["dilation_rate"]) == (1,)):
    # A FreeConv1D, not keras.layers.Conv1D: Keras 3 pads an even kernel's SAME convolution
    # on PyTorch differently from TensorFlow (the pre-emphasis' 2 taps).
    return blocks.FreeConv1D(
        config["filters"], config["kernel_size"][0], strides=config["strides"][0],
        padding=config["padding"], kernel_initializer=config["kernel_initializer"], **common)
  raise TypeError(f"from_tf_keras: no Keras 3 twin for the block {layer.name!r} of type "
                  f"{type(layer).__name__}.")


class _Named(Frontend):
  """A named frontend: the arguments of `tf_keras_class`, its blocks as Keras 3 twins."""
  tf_keras_class = None

  def __init__(self, *args, **kwargs):
    layer_kwargs, arguments = blocks.split_layer_arguments(dict(kwargs))
    template = self.tf_keras_class(*args, **arguments)
    super().__init__(**{key: convert_block(getattr(template, key)) for key in BLOCKS},
                     energy_floor=template.energy_floor, sample_rate=template.sample_rate,
                     **layer_kwargs)
    self._arguments = blocks.own_arguments(template)

  def get_config(self):
    return {**keras.layers.Layer.get_config(self), **self._arguments}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


def _named_twin(tf_keras_class):
  """The Keras 3 class of a named composition (same name, arguments and defaults)."""
  name = tf_keras_class.__name__
  twin = type(name, (_Named,), {
      "tf_keras_class": tf_keras_class, "__module__": __name__,
      "__doc__": f"`tf_frontends.{name}` (same arguments and defaults) as a Keras 3 layer."})
  return keras.saving.register_keras_serializable(package=blocks.PACKAGE)(twin)


Leaf = _named_twin(tf_keras_frontends.Leaf)
SincNet = _named_twin(tf_keras_frontends.SincNet)
SincNetPlus = _named_twin(tf_keras_frontends.SincNetPlus)
TimeDomainFilterbanks = _named_twin(tf_keras_frontends.TimeDomainFilterbanks)


class _Standalone(composition.FrontendInterface, blocks.Twin):
  """A frontend that is one layer (mel, EfficientLEAF): the sizes read off the template."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    for key in ("sample_rate", "window_size", "hop", "n_filters"):
      setattr(self, key, getattr(self.template, key))

  @property
  def output_bins(self) -> int:
    return self.template.output_bins

  def compute_output_shape(self, input_shape):
    return tuple(self.template.compute_output_shape(tf.TensorShape(input_shape)).as_list())


@keras.saving.register_keras_serializable(package=blocks.PACKAGE)
class MelFilterbanks(_Standalone):
  """`tf_frontends.MelFilterbanks` (same arguments and defaults) as a Keras 3 layer.

  On TensorFlow it runs the tf_keras layer's own graph; elsewhere the frames' windowed DFT
  (the tf_keras layer's matrix) as a matrix product, then the same mel matrix and log.
  """
  tf_keras_class = mel.MelFilterbanks

  def build(self, input_shape):
    self.template.build(tf.TensorShape(input_shape))

  def mel_matrix(self):
    return self.template.mel_matrix()

  def filter_taps(self):
    return None

  def frequency_responses(self, n_fft: int = 1024):
    return self.template.frequency_responses(n_fft)

  def call(self, inputs):
    if blocks.on_tensorflow():
      return self.template.call(inputs)
    t = self.template
    waveform = as_mono_waveform(inputs, "MelFilterbanks")[:, :, 0]
    length = waveform.shape[1]
    if t.frame_padding == "reflect":
      waveform = keras.ops.take(waveform, np.pad(np.arange(length), t.n_fft // 2,
                                                 mode="reflect"), axis=1)
      frames = 1 + (waveform.shape[1] - t.window_size) // t.hop
    else:
      frames = -(-length // t.hop)
      waveform = keras.ops.pad(waveform, [[0, 0], [0, (frames - 1) * t.hop + t.window_size -
                                                   length]])
    starts = np.arange(frames)[:, np.newaxis] * t.hop
    framed = keras.ops.take(waveform, starts + np.arange(t.window_size), axis=1)
    real, imag = keras.ops.split(keras.ops.matmul(framed, t._windowed_dft), 2, axis=-1)
    energy = keras.ops.matmul(keras.ops.square(real) + keras.ops.square(imag),
                              t._mel_matrix)
    return keras.ops.log(keras.ops.maximum(energy, t.log_floor) + t.log_offset)


@keras.saving.register_keras_serializable(package=blocks.PACKAGE)
class EfficientLeaf(_Standalone):
  """`tf_frontends.EfficientLeaf` (same arguments and defaults) as a Keras 3 layer."""
  tf_keras_class = efficient_leaf.EfficientLeaf

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._compression = convert_block(self.template._compression)

  def build(self, input_shape):
    t = self.template
    with tf.init_scope():  # the initial values and the group structure, as the template has them
      t.build(tf.TensorShape(input_shape))
    self.groups = tuple(t.groups)

    def weight(template_weight, trainable):
      bounds = template_weight.constraint
      return self.add_weight(
          name=template_weight.name.split("/")[-1].split(":")[0],
          shape=tuple(template_weight.shape), dtype="float32", trainable=trainable,
          initializer=keras.initializers.Constant(template_weight.numpy()),
          constraint=blocks.Bounds(bounds.lower, bounds.upper))

    self.kernel = weight(t.kernel, t.learn_filters)
    self.pooling_sigma = weight(t.pooling_sigma, t.learn_pooling)
    self._compression.build((input_shape[0], None, t.n_filters))

  def energies(self, inputs):
    """Pooled squared Gabor responses [batch, frames, n_filters], before compression."""
    t = self.template
    tensorflow = blocks.on_tensorflow()
    return efficient_leaf.grouped_energies(
        as_mono_waveform(inputs, "EfficientLeaf"), blocks.weight_value(self.kernel),
        blocks.weight_value(self.pooling_sigma), self.groups, t.window_size, t.hop,
        t.conv_win_factor, t.stride_factor, t.pooling,
        pooling.strided_window_sums if tensorflow else blocks.window_sums,
        blocks.array_ops())

  def call(self, inputs, training=None):
    outputs = self.energies(inputs)
    if self.template.compression == "pcen":
      return self._compression(keras.ops.maximum(outputs, composition.ENERGY_FLOOR))
    return self._compression(outputs, training=training)

  def filter_taps(self):
    return None


_BLOCK_TWINS = {
    twin.tf_keras_class: twin for twin in (
        blocks.GaborConv1D, blocks.SincConv1D, blocks.FreeConv1D, blocks.SquaredModulus,
        blocks.GaussianLowpass, blocks.LearnablePooling1D, blocks.PCEN,
        blocks.LogCompression, blocks.LogTBN)}
FRONTEND_TWINS = {twin.tf_keras_class: twin for twin in (
    Leaf, SincNet, SincNetPlus, TimeDomainFilterbanks, MelFilterbanks, EfficientLeaf)}
