"""The classifier hub module: signatures, class-name asset, hub.KerasLayer use and fine-tuning."""
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from hub_modules import classifier_module
from tests.hub_modules.test_frontend_module import make_signals
from tests.hub_modules.test_frontend_module import run_hub_checks
from tests.hub_modules.test_frontend_module import run_keras3_check
from train import models
from train.configs import default

# Names with the characters a CSV has to quote (AudioSet has "Child speech, kid speaking").
CLASSES = [{"index": 0, "id": "/m/09x0r", "display_name": "Speech"},
           {"index": 1, "id": "/m/0ytgt", "display_name": "Child speech, kid speaking"},
           {"index": 2, "id": "/m/05r5c", "display_name": 'Piano "grand"'},
           {"index": 3, "id": "/m/07s72n", "display_name": "Bell"},
           {"index": 4, "id": "/m/026t6", "display_name": "Drum"}]


WINDOW_SAMPLES = 1600      # frame_scores window (the training crop) of the test module


def tiny_config():
  """LEAF (8 filters) + MobileNetV3Small x0.25, deterministic in training mode
  (no dropout, SpecAugment or stochastic depth) so a loss before and after a
  step is comparable."""
  config = default.get_config()
  config.frontend.n_filters = 8
  config.model.backbone = "mobilenet"
  config.model.mobilenet = dict(model_id="MobileNetV3Small", filter_size_scale=0.25)
  config.model.use_sync_bn = False
  config.model.stochastic_depth = 0.0
  config.model.dropout = 0.0
  config.model.spec_augment.enabled = False
  config.model.num_classes = len(CLASSES)
  return config


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """(module dir, copied elsewhere with the original deleted; inputs; Keras outputs)."""
  tmp = tmp_path_factory.mktemp("classifier_module")
  tf_keras.utils.set_random_seed(0)
  model = models.create_model(tiny_config())
  x = make_signals()
  reference = {k: v.numpy() for k, v in classifier_module.classifier_outputs(model, x).items()}
  classifier_module.save_classifier_module(model, CLASSES, str(tmp / "original"),
                                           window_samples=WINDOW_SAMPLES)
  shutil.copytree(tmp / "original", tmp / "copied")
  shutil.rmtree(tmp / "original")            # the asset must travel with the directory
  return tmp / "copied", x, reference


@pytest.fixture(scope="module")
def fresh_process_result(saved, tmp_path_factory):
  path, x, reference = saved
  return run_hub_checks(path, x, reference["scores"], tmp_path_factory.mktemp("classifier_checks"),
                        output_key="scores", tune_key="embedding", num_outputs=3)


@pytest.mark.slow
def test_hub_keras_layer_scores_equal_the_keras_model(fresh_process_result):
  assert fresh_process_result["inference_max_abs_diff"] <= 1e-6


@pytest.mark.slow
def test_class_names_survive_copying_the_directory(fresh_process_result):
  names = fresh_process_result["class_names"]
  assert names["index"] == [c["index"] for c in CLASSES]
  assert names["id"] == [c["id"] for c in CLASSES]
  assert names["display_name"] == [c["display_name"] for c in CLASSES]


@pytest.mark.slow
def test_fine_tuning_embedding_changes_frontend_and_lowers_loss(fresh_process_result):
  result = fresh_process_result
  assert result["missing_gradients"] == []
  assert result["losses"][-1] < result["losses"][0], result["losses"]
  frontend = [v for name, v in result["changed"].items() if "gabor_conv" in name]
  assert frontend and max(frontend) > 0
  assert result["num_trainable_variables"] < result["num_variables"]   # BN statistics


@pytest.mark.slow
@pytest.mark.parametrize("case,expected", [
    ("int16", "got dtype int16"), ("rank1", "got rank 1"), ("too_short", "shorter than 401")])
def test_bad_input_gives_a_clear_error(fresh_process_result, case, expected):
  message = fresh_process_result["errors"][case]
  assert message is not None and expected in message


def test_signatures(saved):
  path, x, reference = saved
  loaded = tf.saved_model.load(str(path))
  assert sorted(loaded.signatures) == ["class_names", "classify_clip", "frame_scores",
                                       "metadata", "serving_default"]
  batch = loaded.signatures["serving_default"](waveform=tf.constant(x))
  assert sorted(batch) == ["embedding", "features", "logits", "scores"]
  for key in batch:
    np.testing.assert_allclose(batch[key].numpy(), reference[key], atol=1e-5)
  np.testing.assert_allclose(tf.sigmoid(batch["logits"]).numpy(), batch["scores"].numpy(),
                             atol=1e-6)                          # multi-label: sigmoid
  clip = loaded.signatures["classify_clip"](waveform=tf.constant(x[2]))
  np.testing.assert_allclose(clip["scores"].numpy(), reference["scores"][2], atol=1e-5)
  metadata = loaded.signatures["metadata"]()
  assert int(metadata["num_classes"]) == len(CLASSES) and bool(metadata["multi_label"])
  assert int(metadata["sample_rate"]) == 16000 and int(metadata["min_samples"]) == 401
  assert int(metadata["window_samples"]) == WINDOW_SAMPLES
  assert int(metadata["hop_samples"]) == WINDOW_SAMPLES // 2
  assert int(metadata["max_samples"]) == 60 * 16000
  call = loaded(tf.constant(x), training=False)
  np.testing.assert_allclose(call["embedding"].numpy(), reference["embedding"], atol=1e-5)


def test_class_count_must_match(tmp_path):
  model = models.create_model(tiny_config())
  model(tf.zeros([1, 800]))
  with pytest.raises(ValueError, match="4 class names for a model with 5 outputs"):
    classifier_module.save_classifier_module(model, CLASSES[:4], str(tmp_path / "m"))
  assert not (tmp_path / "m").exists()


def numpy_frames(waveform, window, hop):
  """Windows [frames, window]: frame i = samples [i * hop, i * hop + window), zero-padded."""
  num_frames = 1 + int(np.ceil((len(waveform) - window) / hop))
  padded = np.zeros(window + (num_frames - 1) * hop, np.float32)
  padded[:len(waveform)] = waveform
  return np.stack([padded[i * hop:i * hop + window] for i in range(num_frames)])


@pytest.mark.parametrize("num_samples", [WINDOW_SAMPLES, 5 * WINDOW_SAMPLES + 123])
def test_frame_scores_equal_the_keras_model_on_each_window(saved, num_samples):
  path, _, _ = saved
  model = saved_keras_model()
  waveform = 0.3 * np.random.default_rng(2).standard_normal(num_samples).astype(np.float32)
  frames = tf.saved_model.load(str(path)).signatures["frame_scores"](
      waveform=tf.constant(waveform))
  windows = numpy_frames(waveform, WINDOW_SAMPLES, WINDOW_SAMPLES // 2)
  expected = classifier_module.classifier_outputs(model, tf.constant(windows))
  assert frames["scores"].shape == (len(windows), len(CLASSES))
  for key in ("scores", "logits", "embedding"):
    np.testing.assert_allclose(frames[key].numpy(), expected[key].numpy(), atol=1e-5)
  # The model card's clip prediction: the mean over frames.
  clip = frames["scores"].numpy().mean(axis=0)
  assert clip.shape == (len(CLASSES),)


def saved_keras_model():
  """The Keras model the `saved` fixture exported (same seed, same weights)."""
  tf_keras.utils.set_random_seed(0)
  model = models.create_model(tiny_config())
  model(tf.zeros([1, WINDOW_SAMPLES]))
  return model


def test_class_map_path_reads_the_class_csv(saved):
  path, _, _ = saved
  loaded = tf.saved_model.load(str(path))
  csv_path = loaded.class_map_path().numpy().decode()
  rows = open(csv_path, encoding="utf-8").read().splitlines()
  assert rows[0] == "index,id,display_name" and len(rows) == len(CLASSES) + 1
  assert rows[2] == '1,/m/0ytgt,"Child speech, kid speaking"'


BAD_INPUTS = {
    "nan": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x),
            "NaN or infinite"),
    "inf": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, -np.inf, x),
            "NaN or infinite"),
    "int16_scale": (lambda x: np.round(x * 32767), "int16 PCM scale? Divide by 32768"),
    "empty_batch": (lambda x: x[:0], "empty batch"),
    "channel_axis": (lambda x: x[..., np.newaxis], "drop the channel axis"),
    "too_long": (lambda x: np.zeros([1, 60 * 16000 + 1]), "longer than 960000 samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("entry", ["serving_default", "__call__"])
def test_bad_values_and_shapes_are_refused_with_the_reason(saved, case, entry):
  path, x, _ = saved
  loaded = tf.saved_model.load(str(path))
  make_bad, expected = BAD_INPUTS[case]
  bad = tf.constant(make_bad(x).astype(np.float32))
  if entry == "__call__" and case == "channel_axis":
    expected = "got rank 3"              # known statically there
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(expected)):
    if entry == "serving_default":
      loaded.signatures["serving_default"](waveform=bad)
    else:
      loaded(bad)


@pytest.mark.parametrize("signature,make_bad,expected", [
    ("classify_clip", lambda x: x[0] * 32767, "int16 PCM scale"),
    ("classify_clip", lambda x: x[:1], "got shape"),
    ("frame_scores", lambda x: np.full(WINDOW_SAMPLES, np.nan), "NaN or infinite"),
    ("frame_scores", lambda x: np.zeros(WINDOW_SAMPLES - 1), "shorter than 1600 samples"),
    ("frame_scores", lambda x: np.zeros([1, WINDOW_SAMPLES]), "got shape")])
def test_single_clip_signatures_refuse_bad_input(saved, signature, make_bad, expected):
  path, x, _ = saved
  fn = tf.saved_model.load(str(path)).signatures[signature]
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(expected)):
    fn(waveform=tf.constant(make_bad(x).astype(np.float32)))


# Peak memory of frame_scores on `seconds` of audio, in a fresh process.
PEAK_MEMORY = r'''
import os, resource, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
path, seconds = sys.argv[1], float(sys.argv[2])
fn = tf.saved_model.load(path).signatures["frame_scores"]
fn(waveform=tf.zeros([16000]))                 # warm up: graph and kernels
waveform = 0.1 * np.sin(np.arange(int(seconds * 16000)) * 0.05).astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scores = fn(waveform=tf.constant(waveform))["scores"].numpy()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT", scores.shape[0], int(np.isfinite(scores).all()), (after - before) // 1024)
'''


@pytest.mark.slow
def test_ten_minutes_of_audio_are_scored_in_bounded_memory(saved, tmp_path):
  """The peak grows by less than the one-pass path needs for 30 s (its ~0.35 GB)."""
  path, _, _ = saved
  script = tmp_path / "peak_memory.py"
  script.write_text(PEAK_MEMORY)
  proc = subprocess.run([sys.executable, str(script), str(path), "600"], capture_output=True,
                        text=True, timeout=600)
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and line, proc.stderr[-3000:]
  frames, finite, growth_mb = map(int, line[0].split()[1:])
  hop = WINDOW_SAMPLES // 2
  assert frames == 1 + -(-(600 * 16000 - WINDOW_SAMPLES) // hop) and finite
  # 10 minutes of float32 audio is 38 MB; outputs 12000 x (2 x 5 + 1024) floats ~ 50 MB.
  assert growth_mb < 400, growth_mb


@pytest.mark.slow
def test_keras3_tfsmlayer_loads_the_classifier(saved, tmp_path):
  path, x, _ = saved
  result = run_keras3_check(path, x, tmp_path)
  assert result["keys"] == ["embedding", "features", "logits", "scores"]
  assert max(result["direct"].values()) <= 1e-6 and max(result["in_model"].values()) <= 1e-6
