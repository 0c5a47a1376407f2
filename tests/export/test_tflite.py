"""export.tflite on each frontend: constant folding, built-in ops only, LiteRT parity;
the input policy for invalid samples; TFLite Model Metadata and the MediaPipe task model."""
import io
import re
import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from ai_edge_litert import interpreter as litert
from tensorflow.lite.tools import flatbuffer_utils

import tf_frontends
from export import tflite
from export import tflite_metadata

NUM_SAMPLES = 3200


def clips(count=3):
  rng = np.random.default_rng(1)
  t = np.arange(NUM_SAMPLES) / 16000
  quiet = 1e-3 * rng.standard_normal(NUM_SAMPLES)
  quiet[NUM_SAMPLES // 2:] += 0.5 * np.sin(2 * np.pi * 880 * t[NUM_SAMPLES // 2:])  # onset
  return [np.float32(0.2 * rng.standard_normal(NUM_SAMPLES)), np.float32(quiet),
          np.float32(0.4 * np.sin(2 * np.pi * 300 * t))][:count]


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
def test_frontend_converts_with_builtins_and_matches(name):
  tf_keras.utils.set_random_seed(0)
  frontend = tf_frontends.get(name, n_filters=8)
  outputs_fn = lambda w: {"features": frontend(w), "scores": tf.reduce_mean(frontend(w), 1)}
  models = tflite.convert(outputs_fn, NUM_SAMPLES, ["float", "int8"],
                          representative_waveforms=clips(), float_scope=frontend.name)
  for clip in clips():
    expected = frontend(clip[np.newaxis]).numpy()
    got = tflite.TFLiteRunner(models["float"])(clip)["features"]
    np.testing.assert_allclose(got, expected, atol=1e-4)
  runner = tflite.TFLiteRunner(models["float"])
  assert not [op for op in runner.op_names() if op.lower().startswith("flex")]
  # folded: no filter computation (COS / SIN / EXP from parameters) left at run time
  assert not {"COS", "SIN", "EXP"} & set(runner.op_names())
  int8 = tflite.TFLiteRunner(models["int8"])
  for clip in clips():                     # runs (no int8 DIV-by-zero-point, no conv refusal)
    assert np.all(np.isfinite(int8(clip)["features"]))


def test_runner_refuses_the_wrong_length():
  frontend = tf_frontends.get("mel", n_filters=8)
  models = tflite.convert(lambda w: {"features": frontend(w)}, NUM_SAMPLES, ["float"])
  with pytest.raises(ValueError, match=f"exactly {NUM_SAMPLES} samples"):
    tflite.TFLiteRunner(models["float"])(np.zeros(NUM_SAMPLES + 1, np.float32))


def test_fit_length_centre_crops_and_pads():
  x = np.arange(10, dtype=np.float32)
  np.testing.assert_array_equal(tflite.fit_length(x, 4), [3, 4, 5, 6])
  np.testing.assert_array_equal(tflite.fit_length(x[:2], 4), [0, 1, 0, 0])


@pytest.fixture(scope="module")
def leaf_models():
  """Float and int8 models of LEAF (8 filters) + a dense head: {features, logits, scores}."""
  tf_keras.utils.set_random_seed(0)
  frontend = tf_frontends.get("leaf", n_filters=8)
  head = tf_keras.layers.Dense(4)

  def outputs_fn(waveform):
    features = frontend(waveform)
    logits = head(tf.reduce_mean(features, axis=1))
    return {"features": features, "logits": logits, "scores": tf.sigmoid(logits)}
  return tflite.convert(outputs_fn, NUM_SAMPLES, ["float", "int8"],
                        representative_waveforms=clips(), float_scope=frontend.name)


def invalid_clips():
  clip = clips(1)[0]
  return {"nan": np.where(np.arange(NUM_SAMPLES) == 5, np.nan, clip),
          "inf": np.where(np.arange(NUM_SAMPLES) == 5, np.inf, clip),
          "int16_scale": np.round(clip * 32767)}


@pytest.mark.parametrize("quantization", ["float", "int8"])
def test_invalid_input_gives_all_zero_outputs_in_the_graph(leaf_models, quantization):
  """The documented TFLite policy (a TFLite model cannot raise): never a confident score."""
  runner = litert.Interpreter(model_content=leaf_models[quantization]).get_signature_runner(
      tflite.SIGNATURE_KEY)
  valid = runner(waveform=clips(1)[0][np.newaxis])
  assert np.max(valid["scores"]) > 0.1 and np.max(np.abs(valid["features"])) > 0
  for name, clip in invalid_clips().items():
    outputs = runner(waveform=clip.astype(np.float32)[np.newaxis])
    for key, value in outputs.items():
      assert np.all(value == 0), (name, key)


@pytest.mark.parametrize("case,expected", [
    ("nan", "NaN or infinite"), ("inf", "NaN or infinite"),
    ("int16_scale", "int16 PCM scale? Divide by 32768")])
def test_runner_refuses_invalid_values(leaf_models, case, expected):
  with pytest.raises(ValueError, match=re.escape(expected)):
    tflite.TFLiteRunner(leaf_models["float"])(invalid_clips()[case])


def test_runner_refuses_integer_pcm_and_batches(leaf_models):
  runner = tflite.TFLiteRunner(leaf_models["float"])
  with pytest.raises(ValueError, match="got int16"):
    runner(np.zeros(NUM_SAMPLES, np.int16))
  with pytest.raises(ValueError, match=r"shape \(2, 3200\). Pass clips one at a time"):
    runner(np.zeros([2, NUM_SAMPLES], np.float32))
  with pytest.raises(ValueError, match="exactly 3200 samples; got 3199"):
    runner(np.zeros([1, NUM_SAMPLES - 1, 1], np.float32))
  assert runner(np.zeros([1, NUM_SAMPLES, 1], np.float32))["scores"].shape == (1, 4)


@pytest.mark.parametrize("quantization", ["float", "int8"])
def test_metadata_and_task_model(leaf_models, quantization):
  classes = [{"index": i, "id": f"/m/{i}", "display_name": name}
             for i, name in enumerate(["Speech", "Child speech, kid speaking", "Bell", "Drum"])]
  model = leaf_models[quantization]
  classify, task = tflite_metadata.add_metadata(
      model, classes=classes, name="leaf test", description="d", version="1",
      sample_rate=16000, num_samples=NUM_SAMPLES, multi_label=True)
  # The task model: one input [1, N], one output (the scores), the same numbers.
  interpreter = litert.Interpreter(model_content=task)
  assert [list(d["shape"]) for d in interpreter.get_input_details()] == [[1, NUM_SAMPLES]]
  assert [list(d["shape"]) for d in interpreter.get_output_details()] == [[1, 4]]
  reference = tflite.TFLiteRunner(model)
  for clip in clips():
    for candidate in (task, classify):
      got = tflite.TFLiteRunner(candidate)(clip)
      np.testing.assert_array_equal(got["scores"], reference(clip)["scores"])
  assert len(tflite.TFLiteRunner(classify)(clips(1)[0])) == 3
  # Metadata: one TFLITE_METADATA buffer with the file identifier; labels zipped after it.
  for candidate in (task, classify):
    model_object = flatbuffer_utils.convert_bytearray_to_object(bytearray(candidate))
    entries = [m for m in model_object.metadata if m.name.decode() == "TFLITE_METADATA"]
    assert len(entries) == 1
    buffer = bytes(model_object.buffers[entries[0].buffer].data)
    assert buffer[4:8] == b"M001"
    with zipfile.ZipFile(io.BytesIO(candidate)) as archive:
      assert archive.namelist() == ["labels.txt"]
      assert archive.read("labels.txt").decode().splitlines() == [
          c["display_name"] for c in classes]
  # Writing metadata again replaces it (one entry, one archive member).
  again, _ = tflite_metadata.add_metadata(
      classify, classes=classes, name="leaf test", description="d", version="2",
      sample_rate=16000, num_samples=NUM_SAMPLES, multi_label=True)
  model_object = flatbuffer_utils.convert_bytearray_to_object(bytearray(again))
  assert [m.name.decode() for m in model_object.metadata].count("TFLITE_METADATA") == 1
  with zipfile.ZipFile(io.BytesIO(again)) as archive:
    assert archive.namelist() == ["labels.txt"]


def test_scores_only_names_the_missing_output(leaf_models):
  with pytest.raises(ValueError, match=r"no output named 'probabilities'; it has \['features'"):
    tflite_metadata.scores_only(leaf_models["float"], output="probabilities")
