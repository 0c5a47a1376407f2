"""TFLite conversion of a classifier (built-in ops only) and a LiteRT runner.

    tflite_bytes = convert(model, num_samples=80000, quantization="float")
    runner = TFLiteRunner(tflite_bytes)
    outputs = runner(waveform)         # [num_samples] or [1, num_samples] float32

Every model has one signature, "classify": input `waveform` float32
[1, num_samples] (a fixed length: TFLite plans its buffers for one shape),
outputs `scores` [1, C], `logits` [1, C], `embedding` [1, D], `features`
[1, frames, n_filters]. Quantisations:
  float          float32 weights and arithmetic
  dynamic_range  backbone + head: int8 weights, float activations (no
                 calibration data); the frontend stays float
  int8           backbone + head: int8 weights and activations, calibrated on
                 representative waveforms; the frontend stays float (see
                 nodes_in_scope); float32 input/output

Invalid input: a TFLite model cannot raise, so every model checks its input in
the graph and returns all-zero outputs (no class scores, never a confident one)
when a sample is NaN or infinite or |x| > MAX_ABS_AMPLITUDE (int16 PCM passed
as float). TFLiteRunner refuses such input, and a wrong length, before invoking.
"""
import contextlib
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert
# Graph-level tools the public API lacks: freezing variables, Grappler passes.
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.framework import convert_to_constants
from tensorflow.python.grappler import tf_optimizer

from export import layout
from hub_modules.reusable import MAX_ABS_AMPLITUDE
from tf_frontends import mel
from tf_frontends import waveform as waveform_lib
from train.data import input_pipeline

SIGNATURE_KEY = "classify"
INPUT_NAME = "waveform"
QUANTIZATIONS = ("float", "dynamic_range", "int8")
# Ops kept in float in the int8 model. PCEN divides by (smoothed energy +
# floor)^alpha; on quiet frames that divisor quantises to exactly its zero
# point and LiteRT's int8 DIV stops with "data[i] != zero_point".
INT8_FLOAT_OPS = ("DIV",)
# Name scope of the in-graph input check; kept float in the int8 model (an int8
# |x| would saturate at the calibrated range and pass int16-scale input).
INPUT_CHECK_SCOPE = "input_check"


@contextlib.contextmanager
def native_output_quiet():
  """Holds back what native code writes to stdout / stderr, unless TF logs at INFO.

  The TFLite converter, the quantiser and LiteRT log with their own loggers
  (absl, printf), which ignore TF_CPP_MIN_LOG_LEVEL. When that variable hides
  INFO and WARNING (the binaries' default), their output is collected and shown
  only if the block raises, so no error is lost.
  """
  if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
    yield
    return
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 1)
    os.dup2(captured.fileno(), 2)
    try:
      yield
    except BaseException:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[1], 2)
      captured.seek(0)
      sys.stderr.write(captured.read().decode("utf-8", "replace"))
      raise
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      for fd in saved:
        os.close(fd)


def guarded(outputs_fn: Callable) -> Callable:
  """outputs_fn behind the TFLite input policy: all outputs zero for invalid input."""
  def fn(waveform):
    with tf.name_scope(INPUT_CHECK_SCOPE):
      # False for NaN and +-inf as well: every comparison with NaN is false.
      valid = tf.reduce_all(tf.abs(waveform) <= MAX_ABS_AMPLITUDE)
      clean = tf.where(valid, waveform, tf.zeros_like(waveform))
    outputs = outputs_fn(clean)
    with tf.name_scope(INPUT_CHECK_SCOPE):
      return {k: tf.where(valid, v, tf.zeros_like(v)) for k, v in outputs.items()}
  return fn


def export_function(outputs_fn: Callable, num_samples: int):
  """outputs_fn(waveform [1, num_samples]) -> dict, as a concrete function with a named input."""
  fn = tf.function(lambda waveform: outputs_fn(waveform), input_signature=[
      tf.TensorSpec([1, num_samples], tf.float32, name=INPUT_NAME)])
  return fn.get_concrete_function()


def fold_constants(concrete_fn):
  """The function with variables frozen and every input-independent subgraph evaluated.

  Why: the frontends compute their filters (Gabor / sinc kernels, pooling
  windows) from a few parameters inside `call`. The TFLite converter does not
  fold a computation whose result is much larger than its inputs, so those
  kernels would be recomputed at every invoke and, worse, reach int8 CONV_2D
  as activations with a non-zero zero point, which the kernel refuses
  ("affine_quantization->zero_point != 0 ... failed to prepare"). Grappler's
  constant folding has no such size rule. Returns a callable
  waveform -> {name: tensor} with the same outputs.
  """
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete_fn)
  outputs = tf.nest.pack_sequence_as(concrete_fn.structured_outputs, frozen.outputs)
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
    meta_graph = tf.compat.v1.train.export_meta_graph(graph=graph)
  fetches = meta_graph.collection_def["train_op"].node_list.value  # what grappler keeps
  fetches.extend(t.name for t in tf.nest.flatten(outputs))
  config = config_pb2.ConfigProto()
  config.graph_options.rewrite_options.optimizers[:] = ["constfold"]
  config.graph_options.rewrite_options.min_graph_nodes = -1
  folded = tf_optimizer.OptimizeGraph(config, meta_graph)
  wrapped = tf.compat.v1.wrap_function(
      lambda: tf.graph_util.import_graph_def(folded, name=""), [])
  get = wrapped.graph.get_tensor_by_name
  return wrapped.prune(feeds=[get(frozen.inputs[0].name)],
                       fetches={k: get(t.name) for k, t in outputs.items()})


def write_signature_savedmodel(outputs_fn: Callable, num_samples: int, path: str,
                               fold: bool = True) -> None:
  """A SavedModel with the single fixed-shape "classify" signature (constant-folded)."""
  module = tf.Module()
  if not fold:
    function = export_function(outputs_fn, num_samples)
    module.captured_variables = list(function.variables)   # tracked, so they are saved
    tf.saved_model.save(module, path, signatures={SIGNATURE_KEY: function})
    return
  module.folded = fold_constants(export_function(outputs_fn, num_samples))
  tf.saved_model.save(
      module, path, signatures={SIGNATURE_KEY: export_function(module.folded, num_samples)},
      # Inference only: the TFLite converter reads this SavedModel and nothing differentiates
      # it, so the frontends' custom gradients are not saved. Loading it makes TensorFlow warn
      # "Importing a function ... with ops with unsaved custom gradients" once per gradient
      # function: harmless here (the console drops it). The fine-tunable hub modules are saved
      # with their custom gradients, and the tests fine-tune them through hub.KerasLayer.
      options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


def nodes_in_scope(float_model: bytes, scope: str) -> list:
  """Names of the ops of a float TFLite model under name scope `scope` (e.g. "leaf").

  The int8 model keeps these in float. Why: a frontend ends in a compressed
  (PCEN / log) energy, which expands quiet levels; int8 holds ~48 dB, so
  quantising the filterbank output or the energies makes quiet frames collapse
  onto the floor and the features jump by whole units. The frontend's last op
  (whose output the backbone reads as int8) is named after the model output
  and stays int8: the backbone's input is quantised in any int8 model.
  """
  interpreter = litert.Interpreter(
      model_content=float_model,
      experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
  prefix = scope.rstrip("/") + "/"
  nodes = set()
  for op in interpreter._get_ops_details():  # pylint: disable=protected-access
    for i in op["outputs"]:
      name = names.get(int(i), "")
      if name.startswith(prefix):
        nodes.add(name)                      # fused ops carry "a;b;c" locations
      nodes.update(n for n in name.split(";") if n.startswith(prefix))
  return sorted(nodes)


def convert_savedmodel(path: str, quantization: str = "float",
                       representative_waveforms: Optional[Iterable[np.ndarray]] = None,
                       float_nodes: Sequence[str] = ()) -> bytes:
  """Converts the "classify" signature at `path`; raises if any op is not a built-in.

  float_nodes: for int8, names of ops kept in float (besides INT8_FLOAT_OPS).
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f"quantization must be one of {QUANTIZATIONS}; got {quantization!r}")
  converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=[SIGNATURE_KEY])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no flex ops
  if quantization in ("dynamic_range", "int8"):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == "int8":
    if representative_waveforms is None:
      raise ValueError("int8 quantisation needs representative waveforms.")
    waveforms = [np.asarray(w, np.float32).reshape(1, -1) for w in representative_waveforms]
    if not waveforms:
      raise ValueError("int8 quantisation got an empty set of representative waveforms.")
    converter.representative_dataset = lambda: ([w] for w in waveforms)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # Selective quantisation: the ops in INT8_FLOAT_OPS stay float (see there).
    with warnings.catch_warnings():   # the debugger builds a tf.lite.Interpreter internally
      warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
      debugger = tf.lite.experimental.QuantizationDebugger(
          converter=converter, debug_dataset=converter.representative_dataset,
          debug_options=tf.lite.experimental.QuantizationDebugOptions(
              denylisted_ops=list(INT8_FLOAT_OPS), denylisted_nodes=list(float_nodes)))
    return debugger.get_nondebug_quantized_model()
  return converter.convert()


def convert(outputs_fn: Callable, num_samples: int, quantizations=QUANTIZATIONS,
            representative_waveforms=None, float_scope: Optional[str] = None,
            tmp_parent: Optional[str] = None) -> dict:
  """{quantization: tflite bytes} for each requested quantisation.

  float_scope: name scope of the frontend (its layer name). In the int8 model
  its ops stay float (see nodes_in_scope), as do the input check's (see
  guarded). The dynamic-range model is converted from the graph *before* constant folding: there the frontend's filters are
  computed from its parameters at run time, so they are not constant weights
  and dynamic-range quantisation leaves them (and the frontend) in float; only
  the backbone's and head's weights become int8.
  tmp_parent: where the temporary SavedModels go (default the system's temp folder); export
  passes its staging folder, whose leftovers it removes after a kill.
  """
  outputs_fn = guarded(outputs_fn)
  workdir = tempfile.mkdtemp(prefix=layout.TFLITE_SCRATCH_PREFIX, dir=tmp_parent)
  try:
    # mel's DFT as a matrix product: TFLite's FFT kernel is limited (mel.builtin_ops_only)
    with native_output_quiet(), mel.builtin_ops_only():
      path = os.path.join(workdir, "folded")
      write_signature_savedmodel(outputs_fn, num_samples, path)
      models = {}
      for q in [q for q in QUANTIZATIONS if q in quantizations]:
        float_nodes = ()
        if q == "int8":
          float_model = models.get("float") or convert_savedmodel(path, "float")
          float_nodes = [node for scope in (float_scope, INPUT_CHECK_SCOPE) if scope
                         for node in nodes_in_scope(float_model, scope)]
        source = path
        if q == "dynamic_range" and float_scope:
          source = os.path.join(workdir, "unfolded")
          write_signature_savedmodel(outputs_fn, num_samples, source, fold=False)
        models[q] = convert_savedmodel(source, q, representative_waveforms, float_nodes)
    return {q: models[q] for q in quantizations}
  finally:
    shutil.rmtree(workdir, ignore_errors=True)


class TFLiteRunner:
  """Runs the "classify" signature of a TFLite model with the LiteRT interpreter."""

  def __init__(self, model, num_threads: int = 1):
    """model: tflite bytes or a path to a .tflite file."""
    source = ({"model_content": bytes(model)} if isinstance(model, (bytes, bytearray))
              else {"model_path": str(model)})
    with native_output_quiet():     # "INFO: Created TensorFlow Lite XNNPACK delegate"
      self.interpreter = litert.Interpreter(**source, num_threads=num_threads)
      self.interpreter.allocate_tensors()      # where the delegate is applied
    # The default XNNPACK delegate folds ops into "DELEGATE" nodes; list ops on a bare one.
    self._plain = litert.Interpreter(
        **source, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    signatures = self.interpreter.get_signature_list()
    if SIGNATURE_KEY not in signatures:
      raise ValueError(f"TFLite model has signatures {sorted(signatures)}, not {SIGNATURE_KEY!r}.")
    self.runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
    self.num_samples = int(self.runner.get_input_details()[INPUT_NAME]["shape"][-1])

  def __call__(self, waveform) -> dict:
    """waveform: one clip, [num_samples] or [1, num_samples] (or [1, num_samples, 1])."""
    waveform = check_waveform(waveform, self.num_samples)
    return self.runner(**{INPUT_NAME: waveform[np.newaxis]})

  def op_names(self) -> list:
    """Sorted names of the ops in the graph (flex ops would show as "Flex...")."""
    details = self._plain._get_ops_details()  # pylint: disable=protected-access
    return sorted({d["op_name"] for d in details})

  def float_op_names(self) -> list:
    """Sorted names of compute ops that read or write float32 tensors.

    For an int8 model these are the ops without an int8 kernel that LiteRT runs
    in float between DEQUANTIZE and QUANTIZE (the boundary ops are left out).
    """
    tensors = {d["index"]: d["dtype"] for d in self._plain.get_tensor_details()}
    names = set()
    for op in self._plain._get_ops_details():  # pylint: disable=protected-access
      if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
        continue
      if any(tensors.get(int(i)) == np.float32 for i in list(op["inputs"]) + list(op["outputs"])
             if int(i) >= 0):
        names.add(op["op_name"])
    return sorted(names)

  def latency_ms(self, waveform, repeats: int = 10) -> float:
    """Median wall time of one call, after one warm-up call."""
    self(waveform)
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      self(waveform)
      times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def check_waveform(waveform, num_samples: int) -> np.ndarray:
  """The clip as float32 [num_samples]; ValueError saying what is wrong otherwise."""
  array = np.asarray(waveform)
  if array.size == 0 or array.size != max(array.shape, default=0):
    raise ValueError(f"Expected one clip of {num_samples} samples; got an array of shape "
                     f"{array.shape}. Pass clips one at a time.")
  if np.issubdtype(array.dtype, np.integer):
    raise ValueError(f"Expected float32 samples in [-1, 1]; got {array.dtype}. "
                     f"{waveform_lib.INTEGER_PCM_HINT}")
  array = array.astype(np.float32).reshape(-1)
  if array.shape[0] != num_samples:
    raise ValueError(f"This TFLite model takes exactly {num_samples} samples; "
                     f"got {array.shape[0]}. Crop or zero-pad first.")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"The clip has {int(np.sum(~np.isfinite(array)))} "
                     f"{waveform_lib.NON_FINITE}; the model would return all-zero scores.")
  peak = float(np.max(np.abs(array)))
  if peak > MAX_ABS_AMPLITUDE:
    raise ValueError(f"The clip (peak {peak:g}) {waveform_lib.TOO_LOUD} (The model returns "
                     "all-zero scores for it.)")
  return array


def fit_length(waveform: np.ndarray, num_samples: int) -> np.ndarray:
  """Centre-crops or zero-pads (at the end) a 1-D waveform to num_samples."""
  waveform = np.asarray(waveform, np.float32).reshape(-1)
  if waveform.shape[0] >= num_samples:
    start = int(input_pipeline.centre_offset(waveform.shape[0], num_samples))
    return waveform[start:start + num_samples]
  return np.pad(waveform, (0, num_samples - waveform.shape[0]))
