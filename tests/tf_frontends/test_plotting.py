"""The plotting helper: responses agree with the Gabor formula; PNGs are real images."""
import math

import numpy as np
import pytest
import tensorflow as tf

import tf_frontends
from tf_frontends import plotting


def test_leaf_responses_peak_at_mu_with_gabor_bandwidth():
  leaf = tf_frontends.Leaf()
  leaf.build((None, None))
  mu, sigma = (v.numpy() for v in leaf._filterbank.constrained_params())
  freqs, responses = plotting.frequency_responses(leaf, n_fft=4096)
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
