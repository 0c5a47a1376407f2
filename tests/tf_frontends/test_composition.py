"""The public building blocks and their composition; argument checks and signatures."""
import inspect

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from tests.tf_frontends import numpy_reference as ref
from tests.tf_frontends import signals
from tf_frontends import frontends

LEARNABLE = ["leaf", "sincnet", "sincnet_plus", "tdfbanks"]


def leaf_with_log(n_filters=8):
  return tf_frontends.Frontend(
      tf_frontends.GaborConv1D(n_filters, 401, name="gabor_conv"),
      tf_frontends.SquaredModulus(),
      tf_frontends.GaussianLowpass(401, strides=160, name="gaussian_lowpass"),
      tf_frontends.LogCompression(1e-5))


def test_leaf_with_log_compression_matches_numpy_reference():
  x = signals.speech_like(2, 2000)
  frontend = leaf_with_log()
  got = frontend(x).numpy()
  weights = {w.name.split("/")[-2]: w.numpy() for w in frontend.weights}
  mu, sigma = ref.gabor_clip(*weights["gabor_conv"].T, 401)
  z = ref.correlate_same(x.astype(np.float64), ref.gabor(mu, sigma, 401).T)
  energy = ref.pool_same(np.abs(z)**2, ref.gaussian_window(weights["gaussian_lowpass"], 401), 160)
  expected = np.log(np.maximum(energy, 1e-5) + 1e-5)
  assert got.shape == (2, 13, 8)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_leaf_is_the_composition_of_its_blocks():
  x = signals.speech_like(1, 1600)
  leaf = tf_frontends.Leaf(n_filters=6)
  composed = tf_frontends.Frontend(
      tf_frontends.GaborConv1D(6, 401), tf_frontends.SquaredModulus(),
      tf_frontends.GaussianLowpass(401, strides=160),
      tf_frontends.PCEN(floor=1e-12, learn_params=True, learn_smooth_coef=True))
  composed.build((None, None))
  leaf.build((None, None))
  composed.set_weights([w * 1.01 for w in leaf.get_weights()])
  leaf.set_weights([w * 1.01 for w in leaf.get_weights()])
  np.testing.assert_array_equal(composed(x).numpy(), leaf(x).numpy())
  assert isinstance(leaf, tf_frontends.Frontend)
  assert isinstance(leaf.filterbank, tf_frontends.GaborConv1D)


def test_frontend_config_round_trip_keeps_blocks_and_numbers():
  frontend = leaf_with_log(n_filters=5)
  x = signals.speech_like(1, 999)
  y = frontend(x).numpy()
  restored = tf_keras.layers.deserialize(tf_keras.layers.serialize(frontend))
  assert type(restored) is tf_frontends.Frontend
  assert isinstance(restored.compression, tf_frontends.LogCompression)
  restored(x)
  restored.set_weights(frontend.get_weights())
  np.testing.assert_array_equal(restored(x).numpy(), y)
  assert restored.get_config() == frontend.get_config()


def test_frontend_with_optional_blocks_and_tf_function():
  frontend = tf_frontends.Frontend(
      tf_frontends.SincConv1D(4, 201), tf_keras.layers.LeakyReLU(0.2),
      tf_frontends.LearnablePooling1D(201, strides=80),
      tf_frontends.PCEN(),
      preemphasis=tf_keras.layers.Conv1D(1, 2, padding="same", use_bias=False),
      normalization=tf_keras.layers.LayerNormalization())
  y = tf.function(frontend)(tf.zeros([2, 1000]))
  assert y.shape == (2, 13, 4) and np.all(np.isfinite(y.numpy()))
  assert len(frontend.weights) == 1 + 1 + 1 + 4 + 2


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
@pytest.mark.parametrize("arguments, message", [
    (dict(window_len=401), "window_len is in milliseconds; got 401 ms"),
    (dict(window_stride=160), "window_stride is in milliseconds; got 160 ms"),
    (dict(n_filters=0), "n_filters must be an integer >= 1; got 0"),
    (dict(n_filters=2.5), "n_filters must be an integer >= 1; got 2.5"),
    (dict(sample_rate=0), "sample_rate must be a number > 0; got 0"),
    (dict(sample_rate=-16000), "sample_rate must be a number > 0"),
    (dict(window_len=0.0), "window_len must be a number > 0"),
    (dict(window_stride=-10.0), "window_stride must be a number > 0"),
    (dict(window_stride=0.01), "hop of 0 samples"),
])
def test_bad_sizes_are_refused_naming_the_argument(name, arguments, message):
  with pytest.raises(ValueError, match=message):
    tf_frontends.get(name, **arguments)


@pytest.mark.parametrize("layer, arguments, message", [
    (tf_frontends.GaborConv1D, dict(filters=0, kernel_size=401), "filters must be an integer"),
    (tf_frontends.SincConv1D, dict(filters=4, kernel_size=401, strides=0), "strides must be"),
    (tf_frontends.FreeConv1D, dict(channels=4, kernel_size=-1), "kernel_size must be"),
    (tf_frontends.GaussianLowpass, dict(kernel_size=401, strides=0), "strides must be"),
    (tf_frontends.GaussianLowpass, dict(kernel_size=401, init_sigma=0.0), "init_sigma must be"),
    (tf_frontends.LearnablePooling1D, dict(kernel_size=0), "kernel_size must be"),
])
def test_bad_block_sizes_are_refused_naming_the_argument(layer, arguments, message):
  with pytest.raises(ValueError, match=message):
    layer(**arguments)


def test_mel_accepts_the_learning_switches_off_and_refuses_them_on():
  mel = tf_frontends.get("mel", learn_filters=False, learn_pooling=False)
  assert mel(tf.zeros([1, 800])).shape == (1, 5, 40)
  assert type(mel).from_config(mel.get_config()).get_config() == mel.get_config()
  with pytest.raises(ValueError, match="learn_filters=True, but the mel frontend"):
    tf_frontends.get("mel", learn_filters=True)


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
def test_every_constructor_argument_is_visible_documented_and_in_the_config(name):
  cls = tf_frontends.FRONTENDS[name]
  parameters = [p for p in inspect.signature(cls).parameters.values()
                if p.kind is not inspect.Parameter.VAR_KEYWORD]
  config = cls().get_config()
  for key in ("name", "trainable", "dtype"):
    config.pop(key)
  assert sorted(p.name for p in parameters) == sorted(config)
  documented = (cls.__doc__ or "") + (frontends.__doc__ if name in LEARNABLE else "")
  assert all(p.name in documented for p in parameters), name


@pytest.mark.parametrize("layer, required", [
    (tf_frontends.GaborConv1D, dict(filters=3, kernel_size=11)),
    (tf_frontends.SincConv1D, dict(filters=3, kernel_size=11)),
    (tf_frontends.FreeConv1D, dict(channels=3, kernel_size=11)),
    (tf_frontends.GaussianLowpass, dict(kernel_size=11)),
    (tf_frontends.LearnablePooling1D, dict(kernel_size=11)),
    (tf_frontends.PCEN, {}),
    (tf_frontends.LogCompression, {}),
    (tf_frontends.Frontend, None),
])
def test_every_block_argument_is_documented_and_in_the_config(layer, required):
  parameters = [p.name for p in inspect.signature(layer).parameters.values()
                if p.kind is not inspect.Parameter.VAR_KEYWORD]
  assert all(name in layer.__doc__ for name in parameters), layer.__name__
  config = (leaf_with_log() if required is None else layer(**required)).get_config()
  assert set(parameters) <= set(config), layer.__name__


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
@pytest.mark.parametrize("sample_rate, window_ms, hop_ms", [(16000, 25.0, 10.0),
                                                            (8000, 32.0, 12.5)])
def test_every_named_frontend_implements_the_interface(name, sample_rate, window_ms, hop_ms):
  arguments = dict(n_filters=8, sample_rate=sample_rate, window_len=window_ms,
                   window_stride=hop_ms)
  if "max_freq" in inspect.signature(tf_frontends.FRONTENDS[name]).parameters:
    arguments["max_freq"] = sample_rate / 2 - 100
  frontend = tf_frontends.get(name, **arguments)
  assert isinstance(frontend, tf_frontends.FrontendInterface)
  window = int(sample_rate * window_ms // 1000 + 1)      # leaf-audio's rule, 401 / 257
  hop = int(sample_rate * hop_ms // 1000)                # 160 / 100
  appended = 2 if name == "efficientleaf" else 1         # its median-filtered bands
  assert (frontend.sample_rate, frontend.window_size, frontend.hop, frontend.n_filters,
          frontend.output_bins, frontend.min_samples) == (
              sample_rate, window, hop, 8, 8 * appended, window)
  samples = 3 * hop + 7
  y = frontend(tf.zeros([2, samples]))
  assert y.shape == (2, -(-samples // hop), frontend.output_bins)
  assert tuple(frontend.compute_output_shape([2, samples])) == tuple(y.shape)
  freqs, responses = frontend.frequency_responses(n_fft=512)
  assert responses.shape == (8, freqs.shape[0]) and freqs[-1] == sample_rate / 2
  np.testing.assert_allclose(responses.max(axis=1), 1.0)
  taps = frontend.filter_taps()
  assert (taps is None) == (name == "mel")              # mel's filters are fixed


def test_a_composition_derives_its_sizes_from_its_blocks():
  frontend = tf_frontends.Frontend(
      tf_frontends.FreeConv1D(8, 101, strides=2), tf_frontends.SquaredModulus(),
      tf_keras.layers.MaxPool1D(60, 40, padding="same"), tf_frontends.LogCompression())
  # hop = 2 x 40 input samples; window = max(101 taps, 60 pooled outputs x 2 samples)
  assert (frontend.sample_rate, frontend.hop, frontend.window_size, frontend.n_filters,
          frontend.output_bins, frontend.min_samples) == (16000, 80, 120, 4, 4, 120)
  y = frontend(signals.speech_like(1, 1001))
  assert y.shape == (1, 13, 4) == tuple(frontend.compute_output_shape([1, 1001]))
  kernel = frontend.filterbank.kernel.numpy()[:, 0, :]
  np.testing.assert_array_equal(frontend.filter_taps(), (kernel[:, 0::2] + 1j * kernel[:, 1::2]).T)
  sinc = tf_frontends.Frontend(
      tf_frontends.SincConv1D(4, 101, sample_rate=8000), tf_keras.layers.LeakyReLU(0.2),
      tf_frontends.GaussianLowpass(101, strides=50), tf_frontends.PCEN())
  assert (sinc.sample_rate, sinc.hop, sinc.window_size, sinc.n_filters) == (8000, 50, 101, 4)
  assert not sinc.built                                  # the sizes need no weights
  with pytest.raises(ValueError, match="sample_rate=16000 but the filterbank 'sinc' is made "
                     "for 8000 Hz"):
    tf_frontends.Frontend(
        tf_frontends.SincConv1D(4, 101, sample_rate=8000, name="sinc"),
        tf_keras.layers.LeakyReLU(0.2), tf_frontends.GaussianLowpass(101, strides=50),
        tf_frontends.PCEN(), sample_rate=16000)


def test_get_builds_a_serialized_composition_and_refuses_other_layers():
  serialized = tf_keras.layers.serialize(leaf_with_log(n_filters=3))
  frontend = tf_frontends.get(tf_frontends.COMPOSITION, config=serialized)
  assert type(frontend) is tf_frontends.Frontend and frontend.n_filters == 3
  with pytest.raises(ValueError, match="config describes a Dense, not a frontend"):
    tf_frontends.get(tf_frontends.COMPOSITION,
                     config=tf_keras.layers.serialize(tf_keras.layers.Dense(2)))
  with pytest.raises(ValueError, match="must be a serialized frontend"):
    tf_frontends.get(tf_frontends.COMPOSITION, config={"n_filters": 3})
