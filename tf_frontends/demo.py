r"""Runs every frontend on one clip and draws what they produce.

    python -m tf_frontends.demo --output_dir=demo_out/frontends [--wav=clip.wav]

Without --wav the clip is a sentence spoken by espeak-ng (installed by
scripts/setup.sh). Writes `features.png` (each frontend's output for the clip)
and `<name>_filters.png` (filter responses and centre frequencies vs the mel
initialisation) for the learnable frontends, and prints the output shapes.
"""
import os
import subprocess
import tempfile

from absl import app
from absl import flags

import tf_frontends  # first: routes tf.keras to tf_keras
import matplotlib.pyplot as plt  # noqa: E402  (Agg backend set by plotting)
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from scipy import signal  # noqa: E402

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
  figure, axes = plt.subplots(len(names), 1, figsize=(9, 2.2 * len(names)))
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
  app.run(main)


if __name__ == "__main__":
  run()
