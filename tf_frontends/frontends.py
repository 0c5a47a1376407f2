"""The frontends of the LEAF paper, as compositions of the building blocks.

waveform [batch, time] or [batch, time, 1], float, 16 kHz in [-1, 1]
    -> features [batch, ceil(time / hop), n_filters], float32.

    Leaf                  = GaborConv1D -> |.|^2 -> GaussianLowpass -> max(., 1e-5) -> sPCEN
    SincNet               = SincConv1D -> LeakyReLU(0.2) -> max-pool -> max(., 1e-5) -> LayerNorm
    SincNetPlus           = SincConv1D -> LeakyReLU(0.2) -> GaussianLowpass -> max(., 1e-5) -> PCEN
    TimeDomainFilterbanks = FreeConv1D (Gabor init) -> |.|^2 -> LearnablePooling1D -> max(., 1e-5) -> log
    MelFilterbanks        = |DFT|^2 of Hann-windowed frames -> mel matrix -> log(. + 1e-5)  (mel.py)

Each learnable one is a `composition.Frontend` whose blocks are built from plain
arguments (so its config holds numbers, not layers). Defaults and numerics are
those of google-research/leaf-audio (40 filters, 25 ms windows = 401 taps, 10 ms
hop = 160, SAME padding, mel init 60-7800 Hz). The one deliberate difference:
TimeDomainFilterbanks pools SAME, not VALID.

Arguments every frontend takes (besides its own, documented in its class):
  n_filters: number of output channels (>= 1).
  sample_rate: of the input, in Hz (> 0).
  window_len: filter and pooling window length in milliseconds, at most 100
    (25 ms = 401 taps at 16 kHz: sample_rate * window_len // 1000 + 1).
  window_stride: hop between output frames in milliseconds, at most 100
    (10 ms = 160 samples at 16 kHz).
  learn_filters, learn_pooling: train the filterbank / pooling weights.
  preemp: a learnable 2-tap pre-emphasis (init [-0.97, 1]) first.
  kernel_gradient: how the filterbank's kernel gradient is computed, "native"
    (TensorFlow's own, the default), "correlation" or "auto" (timed once per
    process; never the default, see `convolution.KERNEL_GRADIENTS`). Leaf, SincNet,
    SincNetPlus and TimeDomainFilterbanks only.
  mean_var_norm: per-channel mean/variance normalisation of the output.
  **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype; dtype
    defaults to float32 so the filter math stays float32 under mixed precision).
"""
import tf_keras

from tf_frontends import composition
from tf_frontends import compression
from tf_frontends import convolution
from tf_frontends import efficient_leaf
from tf_frontends import initializers
from tf_frontends import pooling
from tf_frontends.composition import ENERGY_FLOOR
from tf_frontends.composition import SquaredModulus
from tf_frontends.mel import MelFilterbanks


class _NamedFrontend(composition.Frontend):
  """The arguments every named frontend shares; its config is plain values."""

  def __init__(self, filterbank, activation, pooling_layer, compression_layer,
               n_filters: int, sample_rate: int, window_len: float,
               window_stride: float, learn_filters: bool, learn_pooling: bool,
               preemp: bool, mean_var_norm: bool, kernel_gradient: str, **kwargs):
    preemphasis = normalization = None
    if preemp:
      preemphasis = tf_keras.layers.Conv1D(
          1, 2, padding="same", use_bias=False, trainable=learn_filters,
          kernel_initializer=initializers.PreempInit(), name="preemp", dtype="float32")
    if mean_var_norm:
      normalization = tf_keras.layers.GroupNormalization(
          groups=n_filters, epsilon=1e-6, name="instance_norm", dtype="float32")
    super().__init__(filterbank, activation, pooling_layer, compression_layer,
                     preemphasis=preemphasis, normalization=normalization,
                     sample_rate=sample_rate, **kwargs)
    # window_size, hop, n_filters and sample_rate follow from the blocks (Frontend)
    self.window_len = window_len
    self.window_stride = window_stride
    self.learn_filters = learn_filters
    self.learn_pooling = learn_pooling
    self.preemp = preemp
    self.mean_var_norm = mean_var_norm
    self.kernel_gradient = kernel_gradient

  def get_config(self):
    # The Layer's own config plus plain arguments: the blocks follow from them.
    return {**tf_keras.layers.Layer.get_config(self), "n_filters": self.n_filters,
            "sample_rate": self.sample_rate, "window_len": self.window_len,
            "window_stride": self.window_stride, "learn_filters": self.learn_filters,
            "learn_pooling": self.learn_pooling, "preemp": self.preemp,
            "mean_var_norm": self.mean_var_norm, "kernel_gradient": self.kernel_gradient}

  @classmethod
  def from_config(cls, config):
    return cls(**config)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class Leaf(_NamedFrontend):
  """LEAF: Gabor filterbank, Gaussian lowpass pooling, sPCEN (Zeghidour et al. 2021).

  Args (besides those every frontend takes, see the module doc):
    min_freq, max_freq: range of the mel initialisation of the Gabor filters, in Hz.
    pooling_init: initial relative width of the Gaussian pooling windows.
    pcen_alpha, pcen_smooth_coef, pcen_delta, pcen_root, pcen_floor: sPCEN init.
    learn_pcen: train the sPCEN parameters (including the smoothing).
    ema_implementation: "parallel" (default) or "scan" (the straightforward form).
    project_filters_after_update: the Gabor filters' `project_after_update`: True
      (leaf-audio's) projects mu / sigma onto their ranges after each update, False
      (audax's) clips them in the forward pass only (`convolution.GaborConv1D`).
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               min_freq: float = 60.0, max_freq: float = 7800.0,
               learn_filters: bool = True, learn_pooling: bool = True,
               pooling_init: float = 0.4, pcen_alpha: float = 0.96,
               pcen_smooth_coef: float = 0.04, pcen_delta: float = 2.0,
               pcen_root: float = 2.0, pcen_floor: float = 1e-12,
               learn_pcen: bool = True, preemp: bool = False,
               mean_var_norm: bool = False,
               ema_implementation: str = "parallel", kernel_gradient: str = "native",
               project_filters_after_update: bool = True, **kwargs):
    window_size, hop = composition.frame_sizes("Leaf", n_filters, sample_rate, window_len, window_stride)
    composition.check_frequency_range("Leaf", min_freq, max_freq, sample_rate)
    super().__init__(
        convolution.GaborConv1D(
            n_filters, window_size, sample_rate=sample_rate, min_freq=min_freq,
            max_freq=max_freq, kernel_gradient=kernel_gradient,
            project_after_update=project_filters_after_update,
            trainable=learn_filters, name="gabor_conv", dtype="float32"),
        SquaredModulus(name="squared_modulus", dtype="float32"),
        pooling.GaussianLowpass(
            window_size, hop, init_sigma=pooling_init, trainable=learn_pooling,
            name="gaussian_lowpass", dtype="float32"),
        compression.PCEN(
            alpha=pcen_alpha, smooth_coef=pcen_smooth_coef, delta=pcen_delta,
            root=pcen_root, floor=pcen_floor, learn_params=learn_pcen,
            learn_smooth_coef=learn_pcen, per_channel_smooth_coef=True,
            ema_implementation=ema_implementation, name="pcen", dtype="float32"),
        n_filters=n_filters, sample_rate=sample_rate, window_len=window_len,
        window_stride=window_stride, learn_filters=learn_filters,
        learn_pooling=learn_pooling, preemp=preemp, mean_var_norm=mean_var_norm,
        kernel_gradient=kernel_gradient, **kwargs)
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.pooling_init = pooling_init
    self.pcen_alpha = pcen_alpha
    self.pcen_smooth_coef = pcen_smooth_coef
    self.pcen_delta = pcen_delta
    self.pcen_root = pcen_root
    self.pcen_floor = pcen_floor
    self.learn_pcen = learn_pcen
    self.ema_implementation = ema_implementation
    self.project_filters_after_update = project_filters_after_update

  def get_config(self):
    return {**super().get_config(), "min_freq": self.min_freq,
            "max_freq": self.max_freq, "pooling_init": self.pooling_init,
            "pcen_alpha": self.pcen_alpha,
            "pcen_smooth_coef": self.pcen_smooth_coef,
            "pcen_delta": self.pcen_delta, "pcen_root": self.pcen_root,
            "pcen_floor": self.pcen_floor, "learn_pcen": self.learn_pcen,
            "ema_implementation": self.ema_implementation,
            "project_filters_after_update": self.project_filters_after_update}


class _SincFrontend(_NamedFrontend):
  """SincConv1D + LeakyReLU(0.2), shared by SincNet and SincNetPlus."""

  def __init__(self, pooling_layer, compression_layer, *, n_filters, sample_rate,
               window_len, window_stride, min_low_hz, min_band_hz,
               symmetric_window, learn_filters, kernel_gradient, **kwargs):
    window_size, _ = composition.frame_sizes(type(self).__name__, n_filters, sample_rate,
                            window_len, window_stride)
    composition.check_positive(type(self).__name__, min_low_hz=min_low_hz,
                               min_band_hz=min_band_hz)
    super().__init__(
        convolution.SincConv1D(
            n_filters, window_size, sample_rate=sample_rate, min_low_hz=min_low_hz,
            min_band_hz=min_band_hz, symmetric_window=symmetric_window,
            kernel_gradient=kernel_gradient, trainable=learn_filters, name="sinc_conv",
            dtype="float32"),
        tf_keras.layers.LeakyReLU(alpha=0.2, name="leaky_relu", dtype="float32"),
        pooling_layer, compression_layer, n_filters=n_filters,
        sample_rate=sample_rate, window_len=window_len, window_stride=window_stride,
        learn_filters=learn_filters, kernel_gradient=kernel_gradient, **kwargs)
    self.min_low_hz = min_low_hz
    self.min_band_hz = min_band_hz
    self.symmetric_window = symmetric_window

  def get_config(self):
    return {**super().get_config(), "min_low_hz": self.min_low_hz,
            "min_band_hz": self.min_band_hz,
            "symmetric_window": self.symmetric_window}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SincNet(_SincFrontend):
  """SincNet (Ravanelli & Bengio 2018) as in leaf-audio: max-pooling and LayerNorm.

  Args (besides those every frontend takes, see the module doc):
    min_low_hz, min_band_hz: SincConv1D's lowest edge and narrowest band, in Hz.
    symmetric_window: False (default) windows the sinc taps with leaf-audio's
      Hamming window, True with numpy's symmetric `np.hamming` as audax does
      (see `convolution.SincConv1D`).
    layer_norm_epsilon: 1e-3 (leaf-audio's, the Keras default); audax's flax
      LayerNorm uses 1e-6. With `symmetric_window=True` and 1e-6 the frontend
      computes what audax's SincNet does.
    learn_pooling: no effect (max-pooling has no parameters); accepted so every
      frontend takes the same arguments.
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               min_low_hz: float = 50.0, min_band_hz: float = 50.0,
               symmetric_window: bool = False, layer_norm_epsilon: float = 1e-3,
               learn_filters: bool = True, learn_pooling: bool = True,
               preemp: bool = False, mean_var_norm: bool = False,
               kernel_gradient: str = "native", **kwargs):
    window_size, hop = composition.frame_sizes("SincNet", n_filters, sample_rate, window_len, window_stride)
    composition.check_positive("SincNet", layer_norm_epsilon=layer_norm_epsilon)
    super().__init__(
        tf_keras.layers.MaxPool1D(window_size, hop, padding="same", name="max_pool",
                                  dtype="float32"),
        tf_keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                           name="layer_norm", dtype="float32"),
        n_filters=n_filters, sample_rate=sample_rate, window_len=window_len,
        window_stride=window_stride, min_low_hz=min_low_hz, min_band_hz=min_band_hz,
        symmetric_window=symmetric_window, learn_filters=learn_filters,
        learn_pooling=learn_pooling, preemp=preemp, mean_var_norm=mean_var_norm,
        kernel_gradient=kernel_gradient, **kwargs)
    self.layer_norm_epsilon = layer_norm_epsilon

  def get_config(self):
    return {**super().get_config(), "layer_norm_epsilon": self.layer_norm_epsilon}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SincNetPlus(_SincFrontend):
  """SincNet+ of the LEAF paper: Gaussian lowpass pooling and fixed PCEN (floor 1e-6).

  Args (besides those every frontend takes, see the module doc):
    min_low_hz, min_band_hz, symmetric_window: as `SincNet`.
    pooling_init: initial relative width of the Gaussian pooling windows.
    ema_implementation: PCEN's smoother, "parallel" (default) or "scan".
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               min_low_hz: float = 50.0, min_band_hz: float = 50.0,
               symmetric_window: bool = False, pooling_init: float = 0.4,
               ema_implementation: str = "parallel", learn_filters: bool = True,
               learn_pooling: bool = True, preemp: bool = False,
               mean_var_norm: bool = False, kernel_gradient: str = "native", **kwargs):
    window_size, hop = composition.frame_sizes("SincNetPlus", n_filters, sample_rate, window_len,
                              window_stride)
    super().__init__(
        pooling.GaussianLowpass(
            window_size, hop, init_sigma=pooling_init, trainable=learn_pooling,
            name="gaussian_lowpass", dtype="float32"),
        compression.PCEN(
            floor=1e-6, learn_params=False, learn_smooth_coef=False,
            ema_implementation=ema_implementation, name="pcen", dtype="float32"),
        n_filters=n_filters, sample_rate=sample_rate, window_len=window_len,
        window_stride=window_stride, min_low_hz=min_low_hz, min_band_hz=min_band_hz,
        symmetric_window=symmetric_window, learn_filters=learn_filters,
        learn_pooling=learn_pooling, preemp=preemp, mean_var_norm=mean_var_norm,
        kernel_gradient=kernel_gradient, **kwargs)
    self.pooling_init = pooling_init
    self.ema_implementation = ema_implementation

  def get_config(self):
    return {**super().get_config(), "pooling_init": self.pooling_init,
            "ema_implementation": self.ema_implementation}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class TimeDomainFilterbanks(_NamedFrontend):
  """Time-domain filterbanks (Zeghidour et al. 2018) as in leaf-audio.

  A free 1-D convolution of 2 * n_filters channels initialised with energy-normalised
  Gabor filters, squared modulus, one shared learnable lowpass (squared Hann
  init), log(x + 1e-5). Pools SAME (leaf-audio: VALID), see the module doc.

  Args (besides those every frontend takes, see the module doc):
    min_freq, max_freq: range of the Gabor (mel) initialisation, in Hz.
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               min_freq: float = 60.0, max_freq: float = 7800.0,
               learn_filters: bool = True, learn_pooling: bool = True,
               preemp: bool = False, mean_var_norm: bool = False,
               kernel_gradient: str = "native", **kwargs):
    window_size, hop = composition.frame_sizes("TimeDomainFilterbanks", n_filters, sample_rate,
                              window_len, window_stride)
    composition.check_frequency_range("TimeDomainFilterbanks", min_freq, max_freq,
                                      sample_rate)
    super().__init__(
        convolution.FreeConv1D(
            2 * n_filters, window_size,
            kernel_initializer=initializers.TimeDomainGaborInit(
                sample_rate, min_freq, max_freq),
            kernel_gradient=kernel_gradient, trainable=learn_filters, name="conv",
            dtype="float32"),
        SquaredModulus(name="squared_modulus", dtype="float32"),
        pooling.LearnablePooling1D(window_size, hop, trainable=learn_pooling,
                                   name="learnable_pooling", dtype="float32"),
        compression.LogCompression(ENERGY_FLOOR, name="log", dtype="float32"),
        n_filters=n_filters, sample_rate=sample_rate, window_len=window_len,
        window_stride=window_stride, learn_filters=learn_filters,
        learn_pooling=learn_pooling, preemp=preemp, mean_var_norm=mean_var_norm,
        kernel_gradient=kernel_gradient, **kwargs)
    self.min_freq = min_freq
    self.max_freq = max_freq

  def get_config(self):
    return {**super().get_config(), "min_freq": self.min_freq,
            "max_freq": self.max_freq}


FRONTENDS = {
    "leaf": Leaf,
    "sincnet": SincNet,
    "sincnet_plus": SincNetPlus,
    "tdfbanks": TimeDomainFilterbanks,
    "mel": MelFilterbanks,
    "efficientleaf": efficient_leaf.EfficientLeaf,
}


# `get(COMPOSITION, config=tf_keras.layers.serialize(frontend))`: any frontend from its
# serialized form, e.g. a `composition.Frontend(...)` of building blocks held in a run config.
COMPOSITION = "composition"


def get(name: str, **kwargs) -> tf_keras.layers.Layer:
  """Builds a frontend by name: one of `FRONTENDS`, with its constructor kwargs, or
  `COMPOSITION` with `config=` a serialized frontend (`tf_keras.layers.serialize`).

  Every named frontend takes n_filters, sample_rate, window_len, window_stride,
  learn_filters and learn_pooling (see `help()` of its class for the rest).
  """
  if name == COMPOSITION:
    return deserialize(**kwargs)
  if name not in FRONTENDS:
    raise ValueError(f"Unknown frontend {name!r}; choose one of "
                     f"{sorted(FRONTENDS) + [COMPOSITION]}.")
  return FRONTENDS[name](**kwargs)


def deserialize(config: dict) -> tf_keras.layers.Layer:
  """The frontend `tf_keras.layers.serialize(frontend)` gave `config`: plain JSON data."""
  if not isinstance(config, dict) or "class_name" not in config:
    raise ValueError(f"{COMPOSITION}: config must be a serialized frontend (the dict "
                     f"tf_keras.layers.serialize(frontend) returns); got {config!r:.200}.")
  layer = tf_keras.layers.deserialize(config)
  if not isinstance(layer, composition.FrontendInterface):
    raise ValueError(f"{COMPOSITION}: config describes a {type(layer).__name__}, not a "
                     "frontend (a tf_frontends.Frontend composition or a named frontend).")
  return layer
