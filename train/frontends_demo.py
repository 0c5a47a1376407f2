r"""Runs every frontend on one clip and draws what they produce.

    python -m train.frontends_demo --output_dir=demo_out/frontends [--wav=clip.wav] [--verbose]

Without --wav the clip is a sentence spoken by espeak-ng (installed by
scripts/setup.sh). Writes `features.png` (each frontend's output for the clip)
and `<name>_filters.png` (filter responses and centre frequencies vs the mel
initialisation) for the learnable frontends, and prints the output shapes.
A binary, not library code: it lives outside tf_frontends (which has no CLI
and no import side effects).
"""
from train import console  # first: TensorFlow's C++ log level

import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from matplotlib import figure as mpl_figure  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from scipy import signal  # noqa: E402

import tf_frontends  # noqa: E402
from tf_frontends import plotting  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "demo_out/frontends", "Where the PNGs go.")
flags.DEFINE_string("wav", None, "Audio file to analyse; default: espeak-ng speech.")
SENTENCE = "Learnable frontends listen to the raw waveform, one filter at a time."


def spoken_sentence(sample_rate=16000):
  """espeak-ng speech at `sample_rate` (its WAV header's length is bogus: read the data)."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "speech.wav")
    subprocess.run(["espeak-ng", "-w", path, SENTENCE], check=True,
                   capture_output=True)
    audio, rate = soundfile.read(path, dtype="float32")
  return signal.resample_poly(audio, sample_rate, rate).astype(np.float32)


def load_clip(path, sample_rate=16000):
  audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
  audio = audio.mean(axis=1)
  if rate != sample_rate:
    audio = signal.resample_poly(audio, sample_rate, rate).astype(np.float32)
  return audio


def main(argv):
  del argv
  clip = load_clip(FLAGS.wav) if FLAGS.wav else spoken_sentence()
  clip = clip / max(np.abs(clip).max(), 1e-6) * 0.5
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  names = sorted(tf_frontends.FRONTENDS)
  figure = mpl_figure.Figure(figsize=(9, 2.2 * len(names)))
  axes = figure.subplots(len(names), 1)
  for axis, name in zip(axes, names):
    frontend = tf_frontends.get(name)
    features = frontend(clip[np.newaxis])[0].numpy()
    print(f"{name:13s} {clip.shape[0]} samples -> {features.shape} "
          f"range [{features.min():.3g}, {features.max():.3g}]")
    axis.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
                extent=(0, features.shape[0] / 100, 0, features.shape[1]))
    axis.set(ylabel=name)
    if name != "mel":
      plotting.save_png(plotting.plot_filterbank(frontend),
                        os.path.join(FLAGS.output_dir, f"{name}_filters.png"))
  axes[-1].set(xlabel="time (s)")
  figure.tight_layout()
  print("wrote", plotting.save_png(figure, os.path.join(FLAGS.output_dir,
                                                        "features.png")))


def run():
  """Console-script entry point (tf-frontends-demo)."""
  console.define_verbose_flag()
  app.run(main)


if __name__ == "__main__":
  run()
