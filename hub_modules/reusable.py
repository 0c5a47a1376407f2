"""What makes our tf.Modules reusable SavedModels, shared by both hub modules.

A reusable SavedModel (the TF-Hub convention that `hub.KerasLayer(path,
trainable=True)` relies on) carries:
  * `__call__(inputs, training=False)`: a tf.function traced for both values of
    `training`, so dropout / batch norm / SpecAugment behave as in Keras;
  * `variables`, `trainable_variables`: plain lists of the wrapped layer's
    variables (gradients flow to these through `__call__`);
  * `regularization_losses`: a list of argument-less tf.functions.

Inputs are checked inside the graph, so a reloaded module (no Python code of
ours) still answers a wrong dtype, rank, length, an empty batch, NaN / infinite
samples or int16-scale values with a message that says what it wants instead of
a shape error deep inside a convolution or silently wrong scores.
"""
import csv
import os
import tempfile
from typing import Callable, Optional, Sequence

import tensorflow as tf

from export import layout
from tf_frontends import waveform as waveform_lib

WAVEFORM_SPEC = tf.TensorSpec([None, None], tf.float32, name="inputs")
# Inputs people plausibly pass by mistake: PCM as read from a WAV, numpy
# float64, a single clip without its batch axis, a trailing channel axis.
# `__call__` is traced for each so the reloaded module (which has no Python of
# ours) can say why it refuses them, instead of TF's "could not find matching
# concrete function".
MISTAKEN_SPECS = tuple(
    [tf.TensorSpec(None, dtype, name="inputs")
     for dtype in (tf.int16, tf.int32, tf.int64, tf.float16, tf.float64)] +
    [tf.TensorSpec([None] * rank, tf.float32, name="inputs")
     for rank in (0, 1, 3, 4)])
MAX_ABS_AMPLITUDE = waveform_lib.MAX_ABS_AMPLITUDE


def waveform_requirements(min_samples: int, sample_rate: int) -> str:
  return (f"float32 waveform of shape [batch, samples] at {sample_rate} Hz in "
          f"[-1, 1], with samples >= {min_samples} (one analysis window)")


def input_error(inputs: tf.Tensor, what: str) -> tf.Operation:
  """A graph op that always fails, saying what was wrong with `inputs`."""
  if inputs.dtype != tf.float32:
    hint = (waveform_lib.INTEGER_PCM_HINT if inputs.dtype.is_integer
            else waveform_lib.NOT_FLOAT32_HINT)
    message = f"Expected a {what}; got dtype {inputs.dtype.name}. {hint}"
  else:
    message = (f"Expected a {what}; got rank {inputs.shape.rank}. "
               f"{waveform_lib.rank_hint(inputs.shape.rank)}").rstrip()
  return tf.debugging.Assert(tf.constant(False), [tf.constant(message)],
                             name="invalid_input")


def checked_waveform(inputs: tf.Tensor, min_samples: int, what: str, *, rank: int = 2,
                     max_samples: Optional[int] = None) -> tf.Tensor:
  """`inputs` after run-time checks of rank, batch size, length and values.

  rank: 2 for [batch, samples], 1 for one clip [samples]. The rank is checked
  again at run time because a reloaded signature does not enforce its shape.
  max_samples: longest accepted clip (None: no limit).
  """
  shape = tf.shape(inputs)
  # A reloaded signature does not enforce its rank, and Grappler folds Rank /
  # Size(Shape) to the signature's static rank, so the rank is checked through
  # the element count: [B, N, 1] has B * N elements, not B * 1.
  size = tf.size(inputs)
  if rank == 2:
    rank_ok = tf.equal(size, shape[0] * shape[-1])
  else:
    rank_ok = tf.logical_and(tf.equal(size, shape[0]), tf.equal(size, shape[-1]))
  # (condition, message parts) in order; each check runs after the one before,
  # so the first problem is the one reported.
  checks = [(rank_ok, [f"Expected a {what}; got shape", shape,
                       "-", waveform_lib.CHANNELS_HINT if rank == 2 else ""])]
  if rank == 2:
    checks.append((shape[0] > 0, [f"Expected a {what}; got an empty batch (0 clips)."]))
  checks.append((shape[-1] >= min_samples, [
      f"Expected a {what}; the input is shorter than {min_samples} samples. "
      f"{waveform_lib.SHORT_HINT} Samples:", shape[-1]]))
  if max_samples is not None:
    checks.append((shape[-1] <= max_samples, [
        f"Expected a {what}; the input is longer than {max_samples} samples (memory grows "
        "with length). Score long audio window by window with the frame_scores "
        "signature. Samples:", shape[-1]]))
  checks.append((tf.reduce_all(tf.math.is_finite(inputs)), [
      f"Expected a {what}; the input contains {waveform_lib.NON_FINITE}."]))
  checks.append((lambda: tf.reduce_max(tf.abs(inputs)) <= MAX_ABS_AMPLITUDE, [
      f"Expected a {what}; the input {waveform_lib.TOO_LOUD}"]))
  previous = []
  for condition, message in checks:
    with tf.control_dependencies(previous):
      condition = condition() if callable(condition) else condition
      previous = [tf.debugging.Assert(condition, message, name="invalid_input")]
  with tf.control_dependencies(previous):
    return tf.identity(inputs)


def make_regularization_losses(layer) -> list:
  """Argument-less tf.functions, one per weight regulariser of `layer`.

  Keras keeps weight regularisers as zero-argument callables; each becomes its
  own function so hub.KerasLayer adds them to the fine-tuning loss.
  """
  losses = []
  for sublayer in layer._flatten_layers(include_self=True):  # pylint: disable=protected-access
    for loss_fn in sublayer._callable_losses:  # pylint: disable=protected-access
      losses.append(tf.function(loss_fn, input_signature=[]))
  return losses


class ReusableModule(tf.Module):
  """Base class: the attributes of a reusable SavedModel around a Keras layer.

  Subclasses implement `_forward(waveform [B, T] float32, training) -> outputs`
  and `_error_outputs() -> outputs` (same structure, returned only after an
  assert that always fails), then call `trace()` before tf.saved_model.save.
  """
  # tf.Module defines these as read-only properties that collect variables by
  # attribute traversal; the reusable-SavedModel convention wants plain saved
  # lists, so they are overridden by ordinary attributes (set in __init__).
  variables = None
  trainable_variables = None

  def __init__(self, layer, *, min_samples: int, sample_rate: int,
               max_samples: Optional[int] = None, name: str = None):
    super().__init__(name=name)
    # Held without tracking: tracked Keras layers make tf.saved_model.save
    # re-serialise (and re-trace) every layer, which costs minutes and adds
    # nothing for a module that is reloaded without Keras. The functions
    # capture the variables, saved through the `variables` list below.
    object.__setattr__(self, "_layer", layer)
    self._min_samples = int(min_samples)
    self._sample_rate = int(sample_rate)
    self._max_samples = None if max_samples is None else int(max_samples)
    self._what = waveform_requirements(self._min_samples, self._sample_rate)
    self.variables = list(layer.variables)
    self.trainable_variables = list(layer.trainable_variables)
    self.regularization_losses = make_regularization_losses(layer)

  @tf.function(autograph=False)  # plain Python branching on static dtype/rank
  def __call__(self, inputs, training=False):
    if inputs.dtype != tf.float32 or inputs.shape.rank != 2:
      with tf.control_dependencies([input_error(inputs, self._what)]):
        return tf.nest.map_structure(tf.identity, self._error_outputs())
    return self._forward(self.checked(inputs), training)

  def checked(self, inputs, rank: int = 2):
    """`inputs` behind the run-time checks of checked_waveform."""
    return checked_waveform(inputs, self._min_samples, self._what, rank=rank,
                            max_samples=self._max_samples)

  def _forward(self, waveform, training):
    raise NotImplementedError

  def _error_outputs(self):
    raise NotImplementedError

  def trace(self):
    """Traces `__call__` for float32 [batch, samples] and the mistaken inputs."""
    for training in (False, True):
      for spec in (WAVEFORM_SPEC,) + MISTAKEN_SPECS:
        self.__call__.get_concrete_function(spec, training=training)

  @tf.function(input_signature=[])
  def metadata(self):
    """Constants a caller needs to prepare input: {sample_rate, min_samples[, max_samples]}."""
    constants = {"sample_rate": self._sample_rate, "min_samples": self._min_samples}
    if self._max_samples is not None:
      constants["max_samples"] = self._max_samples
    return {k: tf.constant(v, tf.int64) for k, v in constants.items()}


def single_clip(forward: Callable, check: Callable):
  """Wraps a batch forward function for a single 1-D clip [samples].

  check(waveform, rank=1): the module's input checks (ReusableModule.checked).
  """
  def run(waveform):
    waveform = check(waveform, rank=1)
    outputs = forward(waveform[tf.newaxis, :])
    return tf.nest.map_structure(lambda t: t[0], outputs)
  return run


def write_class_names_csv(classes: Sequence[dict], directory: str) -> str:
  """Writes index,id,display_name rows (header first) to directory/class_names.csv (the name
  export.layout gives it: the classifier's asset, and a file of the export folder)."""
  path = os.path.join(directory, layout.CLASS_NAMES)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["index", "id", "display_name"])
    for c in sorted(classes, key=lambda c: int(c["index"])):
      writer.writerow([int(c["index"]), c["id"], c["display_name"]])
  return path


def read_class_names_csv(path: tf.Tensor) -> dict:
  """Graph op: parses the class-name CSV into {index int64, id, display_name}."""
  text = tf.strings.regex_replace(tf.io.read_file(path), "\r", "")
  lines = tf.strings.split(tf.strings.strip(text), "\n")[1:]   # drop the header
  index, ids, names = tf.io.decode_csv(
      lines, record_defaults=[tf.constant([], tf.int64), "", ""])
  return {"index": index, "id": ids, "display_name": names}


def temporary_directory() -> str:
  return tempfile.mkdtemp(prefix="hub_module_assets_")
