"""The classifier hub module: signatures, class-name asset, hub.KerasLayer use and fine-tuning."""
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from hub_modules import classifier_module
from tests.hub_modules.test_frontend_module import make_signals
from tests.hub_modules.test_frontend_module import run_hub_checks
from train import models
from train.configs import default

# Names with the characters a CSV has to quote (AudioSet has "Child speech, kid speaking").
CLASSES = [{"index": 0, "id": "/m/09x0r", "display_name": "Speech"},
           {"index": 1, "id": "/m/0ytgt", "display_name": "Child speech, kid speaking"},
           {"index": 2, "id": "/m/05r5c", "display_name": 'Piano "grand"'},
           {"index": 3, "id": "/m/07s72n", "display_name": "Bell"},
           {"index": 4, "id": "/m/026t6", "display_name": "Drum"}]


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
  classifier_module.save_classifier_module(model, CLASSES, str(tmp / "original"))
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
  assert sorted(loaded.signatures) == ["class_names", "classify_clip", "metadata",
                                       "serving_default"]
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
  call = loaded(tf.constant(x), training=False)
  np.testing.assert_allclose(call["embedding"].numpy(), reference["embedding"], atol=1e-5)


def test_class_count_must_match(tmp_path):
  model = models.create_model(tiny_config())
  model(tf.zeros([1, 800]))
  with pytest.raises(ValueError, match="4 class names for a model with 5 outputs"):
    classifier_module.save_classifier_module(model, CLASSES[:4], str(tmp_path / "m"))
  assert not (tmp_path / "m").exists()
