"""What every frontend accepts as a waveform, and the words for each refusal.

Three places check a waveform, each in its own context: a layer when it is traced
(`composition.as_mono_waveform`, Python errors), a saved TF-Hub module at run time
(`hub_modules.reusable.checked_waveform`, graph asserts) and the LiteRT runner on numpy
arrays (`export.tflite.check_waveform`). The limits and the hints they give are written
here once, so the three say the same thing.
"""

# Largest |sample| accepted. Float audio may overshoot full scale a little
# (resampling, float WAVs peaking above 1); anything beyond 12 dB over full
# scale is a scale mistake, in practice int16 PCM passed as float (|x| <= 32768).
MAX_ABS_AMPLITUDE = 4.0

# Hints, each a sentence, appended to a message that names the input and what was wrong.
INTEGER_PCM_HINT = "Integer PCM: divide by 32768.0 (int16) first."
NOT_FLOAT32_HINT = "Cast with tf.cast(x, tf.float32)."
NON_FINITE = "NaN or infinite samples (replace or drop them first)"
TOO_LOUD = (f"peaks far outside [-1, 1] (above {MAX_ABS_AMPLITUDE:g}): int16 PCM scale? "
            "Divide by 32768.0.")
SHORT_HINT = "Pad short clips with zeros."
CHANNELS_HINT = "For [batch, samples, 1] drop the channel axis: x[..., 0]; downmix stereo first."
NO_BATCH_HINT = "For a single clip add a batch axis: x[tf.newaxis]."


def rank_hint(rank) -> str:
  """What to do with a waveform of this rank instead of [batch, samples] ("" if nothing)."""
  return {1: NO_BATCH_HINT, 3: CHANNELS_HINT}.get(rank, "")
