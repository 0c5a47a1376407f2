"""MelFilterbanks' options (audax's log-mel): float64 numpy reference, audax's mel matrix,
short inputs, config, bad arguments, the FFT / DFT-matmul switch, TFLite."""
import contextlib
import os

import numpy as np
import pytest
import tensorflow as tf

import tf_frontends
from tests.tf_frontends import numpy_reference as ref
from tests.tf_frontends import signals
from tests.tf_frontends.test_tflite import tflite_builtins_output
from tf_frontends import initializers
from tf_frontends import mel as mel_lib

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "fixtures", "audax", "log_mel.npz")
# audax's log-mel recipe (window_len 24.9375 ms = 400 samples at 16 kHz)
AUDAX = dict(n_filters=64, n_fft=1024, window_len=24.9375, symmetric_window=True,
             frame_padding="reflect", mel_weights="torchaudio", log_floor=1e-8, log_offset=0.0)


def reference(x, layer):
  """float64 numpy output of a MelFilterbanks layer's settings, written from the equations."""
  if layer.mel_weights == "torchaudio":
    matrix = ref.mel_matrix_hz(layer.n_filters, layer.sample_rate, layer.min_freq,
                               layer.max_freq, layer.n_fft)
  else:
    matrix = initializers.mel_filters(layer.n_filters, layer.sample_rate, layer.min_freq,
                                      layer.max_freq, layer.n_fft)
  # tf.signal.hann_window is periodic (denominator L) for even L, symmetric for odd L
  periodic = not layer.symmetric_window and layer.window_size % 2 == 0
  return ref.mel(x.astype(np.float64), matrix, layer.window_size, layer.hop, layer.n_fft,
                 periodic=periodic, reflect=layer.frame_padding == "reflect",
                 floor=layer.log_floor, offset=layer.log_offset)


def close(got, expected):
  """Log outputs are O(1..20): 1e-4 of the largest, as for every frontend."""
  return np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


# Each case: an option set, and the same settings without the option (None: shapes differ),
# whose reference must land far outside the tolerance, so the option is what the layer matched.
CASES = {
    "defaults": ({}, None),
    "even_window": ({"window_len": 24.9375}, {"window_len": 24.9375, "symmetric_window": True}),
    "symmetric_window": ({"window_len": 24.9375, "symmetric_window": True},
                         {"window_len": 24.9375}),
    "reflect": ({"frame_padding": "reflect"}, None),
    "torchaudio_weights": ({"mel_weights": "torchaudio"}, {}),
    "floor": ({"log_floor": 1e-2, "log_offset": 0.0}, {}),
    "audax": (AUDAX, {"n_filters": 64, "n_fft": 1024, "window_len": 24.9375,
                      "frame_padding": "reflect"}),
}


def traced_op_types(layer, x, builtin_ops_only):
  context = mel_lib.builtin_ops_only() if builtin_ops_only else contextlib.nullcontext()
  with context:
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec(x.shape, tf.float32)).graph
  return [op.type for op in graph.get_operations()]


@pytest.mark.parametrize("builtin_ops_only", [False, True], ids=["fft", "dft_matmul"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_options_match_the_float64_reference(case, builtin_ops_only):
  """Both DFT forms (FFT for training / SavedModels, matrix product for TFLite)."""
  kwargs, without = CASES[case]
  x = 0.1 * signals.speech_like(2, 2400)          # quiet: the 1e-2 floor clips some bands
  layer = tf_frontends.MelFilterbanks(**kwargs)
  context = mel_lib.builtin_ops_only() if builtin_ops_only else contextlib.nullcontext()
  with context:
    got = tf.function(layer)(x).numpy()
  expected = reference(x, layer)
  assert got.shape == expected.shape == layer.compute_output_shape((2, 2400))
  assert got.dtype == np.float32
  assert close(got, expected), np.abs(got - expected).max()
  if without is not None:
    other = reference(x, tf_frontends.MelFilterbanks(**without))
    assert other.shape == expected.shape and not close(other, expected)


def test_the_graph_target_picks_the_dft_form():
  """An FFT unless traced for TFLite; the switch is restored on leaving (nested too)."""
  layer, x = tf_frontends.MelFilterbanks(**AUDAX), signals.speech_like(1, 1600)
  fft = traced_op_types(layer, x, builtin_ops_only=False)
  matmul = traced_op_types(layer, x, builtin_ops_only=True)
  # the mel matrix is a matrix product in both; the DFT one in the TFLite form only
  assert fft.count("RFFT") == 1 and fft.count("BatchMatMulV2") == 1
  assert "RFFT" not in matmul and matmul.count("BatchMatMulV2") == 2
  with mel_lib.builtin_ops_only():
    with mel_lib.builtin_ops_only():
      assert mel_lib.dft_as_matmul()
    assert mel_lib.dft_as_matmul()
  assert not mel_lib.dft_as_matmul()


def test_reflect_frame_count_and_short_inputs():
  """1 + (T + 2 (n_fft // 2) - L) // hop frames; numpy's reflect even when T <= n_fft // 2."""
  layer = tf_frontends.MelFilterbanks(**AUDAX)
  assert layer.compute_output_shape((1, 80000)) == (1, 504, 64)     # a 5 s crop: audax's 504
  assert layer.compute_output_shape((1, None)).as_list() == [1, None, 64]
  for samples in (1, 2, 300, 512, 513, 1000):
    x = signals.speech_like(1, samples, seed=samples)
    got = layer(x).numpy()
    assert got.shape == tuple(layer.compute_output_shape((1, samples)))
    assert close(got, reference(x, layer)), samples


def test_reflect_indices_are_numpys_reflect_padding():
  for length in (1, 2, 3, 7, 600):
    x = np.arange(length, dtype=np.float64) * 1.5 + 2.0
    for pad in (0, 1, 5, 512):
      indices = mel_lib.reflect_indices(tf.constant(length), pad).numpy()
      np.testing.assert_array_equal(x[indices], np.pad(x, pad, mode="reflect"))


def test_silence_gives_the_log_of_the_floor():
  out = tf_frontends.MelFilterbanks(**AUDAX)(tf.zeros([2, 1600])).numpy()
  np.testing.assert_array_equal(out, np.full_like(out, np.log(np.float32(1e-8))))
  default = tf_frontends.MelFilterbanks()(tf.zeros([1, 1600])).numpy()
  np.testing.assert_allclose(default, np.log(1e-5), rtol=1e-6)


def test_torchaudio_weights_equal_audax_and_the_reference():
  """audax computes its matrix in float32: its weights (in [0, 1]) are off by up to ~1e-5."""
  ours = mel_lib.torchaudio_mel_filters(64, 16000, 60.0, 7800.0, 1024)
  expected = ref.mel_matrix_hz(64, 16000, 60.0, 7800.0, 1024)
  audax = np.load(FIXTURE)["mel_matrix"].T
  assert ours.shape == audax.shape == (64, 513) and ours.dtype == np.float32
  np.testing.assert_allclose(ours, expected, rtol=0, atol=6e-8)      # float32 rounding
  np.testing.assert_allclose(ours, audax, rtol=0, atol=2e-5)
  np.testing.assert_array_equal(ours > 0, audax > 0)                # the same support
  tensorflow_weights = initializers.mel_filters(64, 16000, 60.0, 7800.0, 1024)
  assert np.abs(tensorflow_weights - audax).max() > 100 * 2e-5     # triangles linear in mel


def test_defaults_stay_leaf_audio_and_config_round_trips():
  config = tf_frontends.MelFilterbanks().get_config()
  assert (config["symmetric_window"], config["frame_padding"], config["mel_weights"],
          config["log_floor"], config["log_offset"]) == (False, "end", "tensorflow", 0.0, 1e-5)
  layer = tf_frontends.get("mel", **AUDAX)
  again = tf_frontends.MelFilterbanks.from_config(layer.get_config())
  assert again.get_config() == layer.get_config()
  assert {k: layer.get_config()[k] for k in AUDAX} == AUDAX
  x = signals.speech_like(1, 1600)
  np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())


@pytest.mark.parametrize("kwargs,message", [
    ({"frame_padding": "center"}, r"frame_padding must be one of \('end', 'reflect'\); got 'center'"),
    ({"mel_weights": "slaney"}, r"mel_weights must be one of .*; got 'slaney'"),
    ({"log_floor": -1e-8}, "log_floor must be a finite number >= 0; got -1e-08"),
    ({"log_offset": float("nan")}, "log_offset must be a finite number >= 0; got nan"),
    ({"log_offset": 0.0}, "log_floor and log_offset are both 0"),
])
def test_bad_options_are_refused_by_name(kwargs, message):
  with pytest.raises(ValueError, match=message):
    tf_frontends.MelFilterbanks(**kwargs)


@pytest.mark.slow
def test_audax_options_convert_to_tflite_builtins():
  layer = tf_frontends.MelFilterbanks(**AUDAX)
  x = signals.speech_like(1, 4000)
  expected = layer(x).numpy()
  got = tflite_builtins_output(layer, x)
  assert got.shape == expected.shape == (1, 29, 64)
  np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4)
