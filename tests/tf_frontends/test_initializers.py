"""Initial values against numpy written from the formulas (TF's mel matrix rebuilt too)."""
import math

import numpy as np
import pytest

from tests.tf_frontends import numpy_reference as ref
from tf_frontends import initializers


def htk_mel_matrix(n_filters, n_bins, sample_rate, f_min, f_max):
  """TF's linear_to_mel_weight_matrix from its definition: HTK mel, DC bin dropped."""
  mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)
  bin_mel = mel(np.linspace(0.0, sample_rate / 2, n_bins))[1:, None]
  edges = np.linspace(mel(f_min), mel(f_max), n_filters + 2)
  lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
  weights = np.maximum(0.0, np.minimum((bin_mel - lower) / (centre - lower),
                                       (upper - bin_mel) / (upper - centre)))
  return np.pad(weights, [(1, 0), (0, 0)]).T  # [filters, bins]


@pytest.mark.parametrize("n_filters,sample_rate", [(40, 16000), (64, 16000), (40, 22050)])
def test_mel_matrix_is_tf_definition(n_filters, sample_rate):
  got = initializers.mel_filters(n_filters, sample_rate, 60.0, 7800.0)
  np.testing.assert_allclose(got, htk_mel_matrix(n_filters, 257, sample_rate, 60.0, 7800.0),
                             atol=2e-5)


def test_gabor_init_from_mel_formula():
  params = initializers.GaborInit()((40, 2)).numpy()
  mu, sigma = ref.mel_params(htk_mel_matrix(40, 257, 16000, 60.0, 7800.0))
  np.testing.assert_allclose(params[:, 0], mu, rtol=1e-6)
  np.testing.assert_allclose(params[:, 1], sigma, rtol=1e-5)
  assert np.all(np.diff(params[:, 0]) > 0)  # centre frequencies increase


def test_time_domain_gabor_init_is_energy_scaled_gabor():
  kernel = initializers.TimeDomainGaborInit()((401, 1, 16)).numpy()
  matrix = htk_mel_matrix(8, 257, 16000, 60.0, 7800.0)
  mu, sigma = ref.mel_params(matrix)
  areas = matrix.max(axis=1) * ((matrix > 0).sum(axis=1) + 2) * math.pi / 512
  taps = ref.gabor(mu, sigma, 401) * np.sqrt(areas * 2 * math.sqrt(math.pi) * sigma)[:, None]
  np.testing.assert_allclose(kernel[:, 0, 0::2], taps.real.T, atol=1e-6)
  np.testing.assert_allclose(kernel[:, 0, 1::2], taps.imag.T, atol=1e-6)


def test_sinc_init_first_band_is_mel_spaced_from_min_low():
  params = initializers.SincInit()((40, 2)).numpy()
  mel = lambda f: 2595 * np.log10(1 + f / 700)
  edges = 700 * (10**(np.linspace(mel(50.0), mel(7900.0), 41) / 2595) - 1)
  np.testing.assert_allclose(params[:, 0], edges[:-1], rtol=1e-6)
  np.testing.assert_allclose(params[:, 1], np.diff(edges), rtol=1e-5)
  # The layer adds min_low_hz again: first band 100-197 Hz (DESIGN.md).
  assert 50 + params[0, 0] == pytest.approx(100.0)
  assert 50 + params[0, 0] + 50 + params[0, 1] == pytest.approx(197.0, abs=0.5)


def test_preemp_and_lowpass_inits():
  np.testing.assert_allclose(initializers.PreempInit()((2, 1, 1)).numpy().ravel(), [-0.97, 1.0])
  window = initializers.SquaredHannInit()((401,)).numpy()
  np.testing.assert_allclose(window, (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(401) - 1) / 400))**2,
                             atol=1e-7)


@pytest.mark.parametrize("init,shape", [(initializers.GaborInit(), (40, 2, 1)),
                                         (initializers.SincInit(), (40,)),
                                         (initializers.PreempInit(), (3, 1, 1))])
def test_wrong_shapes_raise(init, shape):
  with pytest.raises(ValueError, match="shape|initialises"):
    init(shape)
