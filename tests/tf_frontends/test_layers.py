"""Filterbank, pooling and compression layers against numpy_reference (float64).

Tolerances: float32 sums of 401 products, so rtol 1e-4 / atol 1e-6 on O(1) values.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from tests.tf_frontends import numpy_reference as ref
from tests.tf_frontends import signals
from tf_frontends import compression
from tf_frontends import convolution
from tf_frontends import impulse_responses
from tf_frontends import pooling


def test_gabor_conv_matches_reference_and_clips_params():
  layer = convolution.GaborConv1D(filters=6, kernel_size=401)
  x = signals.speech_like(2, 1000)
  layer.build((None, None, 1))
  params = np.array([[0.1, 0.5], [0.5, 20.0], [1.0, 80.0], [2.0, 400.0], [-0.2, 3.0],
                     [4.0, 10.0]], np.float32)  # out-of-range mu/sigma get clipped
  layer.kernel.assign(params)
  got = layer(x[..., None]).numpy()
  mu, sigma = ref.gabor_clip(params[:, 0], params[:, 1], 401)
  z = ref.correlate_same(x.astype(np.float64), ref.gabor(mu, sigma, 401).T)
  expected = np.stack([z.real, z.imag], axis=-1).reshape(2, 1000, 12)
  assert got.shape == (2, 1000, 12)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
  assert impulse_responses.gabor_sigma_bounds(401) == pytest.approx((1.499, 150.29), abs=5e-3)


def test_gabor_projection_after_update_is_optional():
  """project_after_update=False (audax's): the forward pass clips as before, but an update that
  leaves the range stays in the variable; the default projects it back."""
  inside = np.array([[0.5, 20.0], [1.0, 80.0]], np.float32)
  step = np.array([[-1.0, 0.0], [0.0, 200.0]], np.float32)   # mu below 0, sigma above 150.3
  x = signals.speech_like(1, 600)[..., None]
  outputs, kernels = {}, {}
  for project in (True, False):
    layer = convolution.GaborConv1D(filters=2, kernel_size=401, project_after_update=project)
    layer.build((None, None, 1))
    layer.kernel.assign(inside)
    tf_keras.optimizers.SGD(1.0).apply_gradients([(tf.constant(step), layer.kernel)])
    kernels[project], outputs[project] = layer.kernel.numpy(), layer(x).numpy()
    again = convolution.GaborConv1D.from_config(layer.get_config())
    assert again.project_after_update is project
  mu, sigma = ref.gabor_clip(inside[:, 0] - step[:, 0], inside[:, 1] - step[:, 1], 401)
  np.testing.assert_array_equal(kernels[False], inside - step)
  np.testing.assert_allclose(kernels[True], np.stack([mu, sigma], 1), rtol=1e-6)
  np.testing.assert_array_equal(outputs[False], outputs[True])
  leaf = tf_frontends.Leaf(n_filters=4, project_filters_after_update=False)
  assert tf_frontends.Leaf.from_config(leaf.get_config()).project_filters_after_update is False


def test_sinc_conv_matches_reference():
  layer = convolution.SincConv1D(filters=40, kernel_size=401)
  x = signals.speech_like(2, 800)
  got = layer(x[..., None]).numpy()
  expected = ref.correlate_same(x.astype(np.float64),
                                ref.sinc_filters(layer.kernel.numpy(), 401, 16000))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)
  low, high = layer.band_edges_hz()
  assert float(low[0]) == pytest.approx(100.0) and float(high[0]) == pytest.approx(197.0, abs=0.5)


def test_sinc_conv_honours_sample_rate():
  layer = convolution.SincConv1D(filters=8, kernel_size=101, sample_rate=8000)
  x = signals.speech_like(1, 300, sample_rate=8000)
  got = layer(x[..., None]).numpy()
  expected = ref.correlate_same(x.astype(np.float64),
                                ref.sinc_filters(layer.kernel.numpy(), 101, 8000))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)
  assert float(tf.reduce_max(layer.band_edges_hz()[1])) <= 4000.0


@pytest.mark.parametrize("stride,length", [(1, 500), (160, 1000), (160, 161), (160, 50)])
def test_gaussian_lowpass_matches_reference(stride, length):
  layer = pooling.GaussianLowpass(kernel_size=401, strides=stride)
  x = np.random.default_rng(1).random((2, length, 3)).astype(np.float32)
  layer.build(x.shape)
  layer.kernel.assign([0.4, 0.1, 0.7])
  got = layer(x).numpy()
  expected = ref.pool_same(x.astype(np.float64), ref.gaussian_window([0.4, 0.1, 0.7], 401), stride)
  assert got.shape == (2, -(-length // stride), 3)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride,length,size", [(160, 1000, 401), (1, 300, 25), (10, 999, 41)])
def test_gaussian_lowpass_gradients_match_finite_differences(stride, length, size):
  """sigma gradients (forward-mode windows) against central differences of the
  float64 reference; input gradients against the plain depthwise convolution's."""
  sigma = np.array([0.4, 0.1, 0.7, 0.001])      # the last is clipped: zero gradient
  rng = np.random.default_rng(length)
  x = rng.random((2, length, 4))
  weights = rng.standard_normal((2, -(-length // stride), 4))

  def loss(sigmas):
    return np.sum(ref.pool_same(x, ref.gaussian_window(sigmas, size), stride) * weights)

  numeric = np.zeros(4)
  for c in range(4):
    step = np.zeros(4)
    step[c] = 1e-6
    numeric[c] = (loss(sigma + step) - loss(sigma - step)) / 2e-6
  x_tf, sigma_tf = tf.constant(x, tf.float32), tf.constant(sigma, tf.float32)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([x_tf, sigma_tf])
    ours = tf.reduce_sum(pooling.gaussian_pool(x_tf, sigma_tf, size, stride) * weights)
    plain = tf.reduce_sum(pooling._depthwise_conv(
        x_tf, impulse_responses.gaussian_window(sigma_tf, size), stride) * weights)
  x_grad, sigma_grad = tape.gradient(ours, [x_tf, sigma_tf])
  np.testing.assert_allclose(sigma_grad.numpy(), numeric, rtol=1e-3,
                             atol=1e-4 * np.abs(numeric).max())
  assert sigma_grad.numpy()[3] == 0.0
  plain_x_grad = tape.gradient(plain, x_tf).numpy()
  np.testing.assert_allclose(x_grad.numpy(), plain_x_grad, rtol=1e-5,
                             atol=1e-6 * np.abs(plain_x_grad).max())


@pytest.mark.parametrize("stride,length", [(160, 1000), (1, 300), (160, 161)])
def test_fused_squared_modulus_pooling_matches_reference_and_plain_gradients(stride, length):
  """Values against the float64 reference; gradients against TensorFlow's own
  gradients of the unfused ops (strided slices, depthwise convolution)."""
  rng = np.random.default_rng(length)
  sigma = np.array([0.4, 0.1, 0.7])
  x = rng.standard_normal((2, length, 6))
  weights = rng.standard_normal((2, -(-length // stride), 3))
  expected = ref.pool_same(x[..., 0::2] ** 2 + x[..., 1::2] ** 2,
                           ref.gaussian_window(sigma, 401), stride)
  x_tf, sigma_tf = tf.constant(x, tf.float32), tf.constant(sigma, tf.float32)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([x_tf, sigma_tf])
    fused = pooling.gaussian_pool_squared_modulus(x_tf, sigma_tf, 401, stride)
    plain = pooling._depthwise_conv(
        tf.square(x_tf[..., 0::2]) + tf.square(x_tf[..., 1::2]),
        impulse_responses.gaussian_window(sigma_tf, 401), stride)
    fused_loss, plain_loss = tf.reduce_sum(fused * weights), tf.reduce_sum(plain * weights)
  np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-4, atol=1e-4)
  for ours, theirs in zip(tape.gradient(fused_loss, [x_tf, sigma_tf]),
                          tape.gradient(plain_loss, [x_tf, sigma_tf])):
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4,
                               atol=1e-5 * np.abs(theirs.numpy()).max())


def test_learnable_pooling_shares_one_window():
  layer = pooling.LearnablePooling1D(kernel_size=401, strides=160)
  x = np.random.default_rng(2).random((1, 900, 4)).astype(np.float32)
  got = layer(x).numpy()
  window = layer.kernel.numpy().astype(np.float64)
  expected = ref.pool_same(x.astype(np.float64), np.repeat(window[:, None], 4, 1), 160)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frames", [1, 2, 63, 64, 65, 130, 500])
def test_parallel_ema_equals_recursion(frames):
  rng = np.random.default_rng(frames)
  x = rng.random((2, frames, 5)) * 10**rng.uniform(-5, 2, (1, 1, 5))
  smooth = np.array([0.0, 0.04, 0.5, 0.999, 1.0])
  expected = ref.ema(x, smooth)
  for ema in (compression.ema_parallel, compression.ema_scan):
    got = ema(tf.constant(x, tf.float32), tf.constant(smooth, tf.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-9 * x.max())


@pytest.mark.parametrize("implementation", ["parallel", "scan"])
def test_pcen_matches_reference(implementation):
  x = np.random.default_rng(3).random((2, 150, 4)).astype(np.float32) + 1e-5
  layer = compression.PCEN(floor=1e-12, learn_params=True, learn_smooth_coef=True,
                           ema_implementation=implementation)
  got = layer(x).numpy()
  expected = ref.pcen(x.astype(np.float64), 0.96, 0.04, 2.0, 2.0, 1e-12)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_pcen_stays_finite_with_weights_pushed_out_of_range():
  layer = compression.PCEN(learn_params=True, learn_smooth_coef=True)
  x = tf.constant(np.random.default_rng(4).random((1, 40, 3)) * 1e3 + 1e-5, tf.float32)
  layer(x)
  layer.delta.assign([-3.0, 0.0, 2.0])
  layer.alpha.assign([-5.0, 3.0, 0.5])
  layer.root.assign([0.1, -2.0, 2.0])
  layer.smooth.assign([-1.0, 2.0, 0.5])
  with tf.GradientTape() as tape:
    y = layer(x)
    loss = tf.reduce_sum(y)
  grads = tape.gradient(loss, layer.trainable_variables)
  assert np.all(np.isfinite(y.numpy()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_pcen_rejects_unknown_implementation():
  with pytest.raises(ValueError, match="ema_implementation"):
    compression.PCEN(ema_implementation="fft")


@pytest.fixture(params=["correlation", "native"])
def kernel_gradient(request):
  return request.param


@pytest.mark.parametrize("size", [401, 400, 5])
def test_correlate_gradients_equal_native_conv_gradients(size, kernel_gradient):
  rng = np.random.default_rng(size)
  x = tf.constant(rng.standard_normal((3, 700, 1)), tf.float32)
  kernel = tf.constant(rng.standard_normal((size, 1, 6)), tf.float32)
  weights = tf.constant(rng.standard_normal((3, 700, 6)), tf.float32)
  grads = []
  for conv in (lambda a, b: convolution.correlate(a, b, kernel_gradient),
               lambda a, b: tf.nn.conv1d(a, b, stride=1, padding="SAME")):
    with tf.GradientTape() as tape:
      tape.watch([x, kernel])
      outputs = conv(x, kernel)
      loss = tf.reduce_sum(outputs * weights)
    grads.append([outputs] + tape.gradient(loss, [x, kernel]))
  for fast, native in zip(*grads):
    np.testing.assert_allclose(fast.numpy(), native.numpy(), rtol=1e-4,
                               atol=1e-4 * np.abs(native.numpy()).max())


def test_correlate_gradient_matches_finite_differences(kernel_gradient):
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, 50, 1))
  kernel = rng.standard_normal((7, 1, 2))
  weights = rng.standard_normal((2, 50, 2))
  def loss(k):
    return float(np.sum(ref.correlate_same(x[..., 0], k[:, 0, :]) * weights))
  kernel_var = tf.Variable(kernel, dtype=tf.float64)
  with tf.GradientTape() as tape:
    value = tf.reduce_sum(
        convolution.correlate(tf.constant(x), kernel_var, kernel_gradient) * weights)
  grad = tape.gradient(value, kernel_var).numpy()
  eps = 1e-6
  numeric = np.zeros_like(kernel)
  for idx in np.ndindex(kernel.shape):
    bumped = kernel.copy()
    bumped[idx] += eps
    numeric[idx] = (loss(bumped) - loss(kernel)) / eps
  np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-4)
  assert float(value) == pytest.approx(loss(kernel), rel=1e-9)


def test_only_auto_times_the_kernel_gradient_and_once_per_shape(monkeypatch):
  monkeypatch.setattr(convolution, "_kernel_gradient_choice", {})
  x = tf.constant(np.random.default_rng(0).standard_normal((2, 3000, 1)), tf.float32)
  kernel = tf.Variable(np.random.default_rng(1).standard_normal((41, 1, 4)), dtype=tf.float32)
  for kernel_gradient in ("native", "correlation"):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(convolution.correlate(x, kernel, kernel_gradient)))
    tape.gradient(loss, kernel)
  convolution.correlate(x, kernel, "auto")
  assert convolution._kernel_gradient_choice == {}      # nothing timed so far
  for _ in range(2):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(convolution.correlate(x, kernel, "auto")))
    tape.gradient(loss, kernel)
  assert list(convolution._kernel_gradient_choice) == [(41, 4, 2, 3000)]
  assert isinstance(convolution._kernel_gradient_choice[(41, 4, 2, 3000)], bool)


@pytest.mark.parametrize("name", ["leaf", "sincnet", "sincnet_plus", "tdfbanks"])
def test_frontends_never_time_by_default_and_take_the_kernel_gradient_argument(name, monkeypatch):
  monkeypatch.setattr(convolution, "_kernel_gradient_choice", {})
  x = tf.constant(signals.speech_like(2, 3200), tf.float32)
  grads = {}
  for kernel_gradient in ("native", "correlation"):
    tf_keras.utils.set_random_seed(0)
    frontend = tf_frontends.get(name, n_filters=4, kernel_gradient=kernel_gradient)
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(frontend(x, training=True)))
    grads[kernel_gradient] = tape.gradient(loss, frontend.trainable_variables)
    rebuilt = type(frontend).from_config(frontend.get_config())
    assert rebuilt.kernel_gradient == kernel_gradient == frontend.get_config()["kernel_gradient"]
  assert convolution._kernel_gradient_choice == {}      # no arithmetic chosen by timing
  for native, correlation in zip(grads["native"], grads["correlation"]):
    np.testing.assert_allclose(correlation.numpy(), native.numpy(), rtol=1e-3,
                               atol=1e-4 * np.abs(native.numpy()).max())
  with pytest.raises(ValueError, match="kernel_gradient must be one of"):
    tf_frontends.get(name, kernel_gradient="fastest")


def test_sinc_conv_symmetric_window_matches_reference():
  layer = convolution.SincConv1D(filters=8, kernel_size=401, symmetric_window=True)
  x = signals.speech_like(2, 800)
  got = layer(x[..., None]).numpy()
  expected = ref.correlate_same(x.astype(np.float64), ref.sinc_filters(
      layer.kernel.numpy(), 401, 16000, symmetric=True))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)
  default = convolution.SincConv1D(filters=8, kernel_size=401)
  default.build(x[..., None].shape)
  default.set_weights(layer.get_weights())
  assert np.abs(default(x[..., None]).numpy() - expected).max() > 100 * 2e-5   # the option matters
  assert convolution.SincConv1D.from_config(layer.get_config()).symmetric_window
