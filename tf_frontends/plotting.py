"""Pictures of a frontend: its filters' frequency responses, where its filters sit
relative to the mel initialisation, and its output for one clip.

Used by the demo, by TensorBoard image summaries during training and by
anyone inspecting a trained frontend. Returns `matplotlib.figure.Figure`
objects, made without pyplot: importing or plotting changes no matplotlib
global state (backend, current figure). `save_png` and `figure_to_png` write them out.

    |H_n(f)|^2 = |DFT_{n_fft}(h_n)|^2 (dB, normalised to each filter's peak)

The responses come from the frontend itself (`FrontendInterface.frequency_responses`),
so any frontend or composition is drawn the same way.
"""
import io
import math

from matplotlib import figure as mpl_figure
import numpy as np



def centres_and_bandwidths(freqs, responses):
  """Per filter: frequency of the peak and the width above half power, in Hz."""
  centres = freqs[np.argmax(responses, axis=1)]
  step = freqs[1] - freqs[0]
  bandwidths = (responses >= 0.5 * responses.max(axis=1, keepdims=True)).sum(1) * step
  return centres, bandwidths


def mel_initialisation(frontend):
  """(centres, bandwidths) in Hz of the same frontend type at initialisation."""
  fresh = type(frontend).from_config(frontend.get_config())
  fresh.build((None, None))
  return centres_and_bandwidths(*fresh.frequency_responses())


def plot_filterbank(frontend, title: str = ""):
  """Two panels: current responses (dB) and centre/bandwidth vs the mel init."""
  freqs, responses = frontend.frequency_responses()
  centres, bandwidths = centres_and_bandwidths(freqs, responses)
  init_centres, init_bandwidths = mel_initialisation(frontend)
  figure = mpl_figure.Figure(figsize=(8, 7))
  top, bottom = figure.subplots(2, 1)
  top.plot(freqs, 10 * np.log10(responses.T), linewidth=0.7)
  top.set(xlabel="frequency (Hz)", ylabel="power (dB, per-filter peak = 0)",
          ylim=(-60, 3), title=title or f"{type(frontend).__name__} filters")
  index = np.arange(len(centres))
  bottom.errorbar(index, init_centres, yerr=init_bandwidths / 2, fmt="o",
                  markersize=3, alpha=0.5, label="mel initialisation")
  bottom.errorbar(index + 0.3, centres, yerr=bandwidths / 2, fmt="s",
                  markersize=3, label="current")
  bottom.set(xlabel="filter", ylabel="centre ± half bandwidth (Hz)")
  bottom.legend()
  figure.tight_layout()
  return figure


def plot_features(features: np.ndarray, hop_seconds: float = 0.01,
                  title: str = "frontend output"):
  """Image of one clip's features [frames, filters], low filters at the bottom."""
  features = np.asarray(features)
  figure = mpl_figure.Figure(figsize=(8, 3))
  axis = figure.subplots()
  image = axis.imshow(features.T, origin="lower", aspect="auto",
                      extent=(0, features.shape[0] * hop_seconds, 0,
                              features.shape[1]), cmap="magma")
  axis.set(xlabel="time (s)", ylabel="filter", title=title)
  figure.colorbar(image, ax=axis)
  figure.tight_layout()
  return figure


def figure_to_png(figure) -> bytes:
  """PNG bytes of a figure, e.g. for tf.summary.image.

  Figure.savefig renders with the Agg canvas for PNG whatever pyplot's backend
  is; a Figure made without pyplot is freed with its last reference.
  """
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=90)
  return buffer.getvalue()


def save_png(figure, path: str) -> str:
  with open(path, "wb") as f:
    f.write(figure_to_png(figure))
  return path


def gabor_bandwidth_hz(sigma_samples, sample_rate):
  """Half-power bandwidth of a Gabor filter: 2 sqrt(ln 2) / sigma rad/sample in Hz."""
  return 2.0 * math.sqrt(math.log(2.0)) / np.asarray(sigma_samples) * sample_rate / (
      2.0 * math.pi)
