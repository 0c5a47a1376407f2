"""The plotting helper: responses agree with the Gabor formula; PNGs are real images."""
import importlib
import math

import matplotlib
import numpy as np
import pytest
import tensorflow as tf

import tf_frontends
from tf_frontends import plotting


def test_leaf_responses_peak_at_mu_with_gabor_bandwidth():
  leaf = tf_frontends.Leaf()
  leaf.build((None, None))
  mu, sigma = (v.numpy() for v in leaf.filterbank.constrained_params())
  freqs, responses = leaf.frequency_responses(n_fft=4096)
  centres, bandwidths = plotting.centres_and_bandwidths(freqs, responses)
  step = freqs[1]
  np.testing.assert_allclose(centres, mu * 16000 / (2 * math.pi), atol=step)
  # Gaussian power response exp(-sigma^2 (w - mu)^2): half power at 2 sqrt(ln 2) / sigma.
  narrow_enough = sigma < 60  # wider envelopes are truncated by the 401 taps
  np.testing.assert_allclose(bandwidths[narrow_enough],
                             plotting.gabor_bandwidth_hz(sigma, 16000)[narrow_enough],
                             atol=2 * step, rtol=0.05)


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
def test_pngs_are_written(name, tmp_path):
  frontend = tf_frontends.get(name, n_filters=8)
  features = frontend(tf.random.normal([1, 3200]) * 0.1)[0].numpy()
  for figure, filename in [(plotting.plot_filterbank(frontend), "filters.png"),
                           (plotting.plot_features(features), "features.png")]:
    path = plotting.save_png(figure, str(tmp_path / filename))
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  init_centres, _ = plotting.mel_initialisation(frontend)
  assert np.all(np.diff(init_centres) >= 0)


def test_import_and_plotting_leave_matplotlib_backend_alone(tmp_path):
  previous = matplotlib.get_backend()
  matplotlib.use("pdf")  # a backend the module would have to switch away from
  try:
    importlib.reload(plotting)  # re-runs the module's import-time code
    frontend = tf_frontends.Leaf(n_filters=4)
    features = frontend(tf.zeros([1, 800]))[0].numpy()
    plotting.save_png(plotting.plot_filterbank(frontend), str(tmp_path / "f.png"))
    plotting.save_png(plotting.plot_features(features), str(tmp_path / "o.png"))
    assert matplotlib.get_backend() == "pdf"
  finally:
    matplotlib.use(previous)
  with open(tmp_path / "f.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_composed_frontend_is_plotted_like_its_filterbank():
  composed = tf_frontends.Frontend(
      tf_frontends.GaborConv1D(6, 401), tf_frontends.SquaredModulus(),
      tf_frontends.GaussianLowpass(401, strides=160), tf_frontends.LogCompression())
  composed.build((None, None))
  taps = composed.filter_taps()
  real, imag = composed.filterbank.impulse_responses()
  np.testing.assert_array_equal(taps, real.numpy() + 1j * imag.numpy())
