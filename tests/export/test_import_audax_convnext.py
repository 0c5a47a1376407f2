"""audax ConvNeXt checkpoints (written by audax's own code: tests/fixtures/audax/
make_audax_convnext_fixture.py) onto our ConvNeXt: logits parity, the full-size parameter
paths and shapes, and what a wrong mapping or a wrong numeric does. No JAX needed."""
import json
import tarfile

import numpy as np
import pytest
import tf_keras

from export import audax_weights
from export import flax_msgpack
from export import import_audax
from tests.export.test_import_audax import ROOT, STEP, TOLERANCE, relative_error
from train import models

ARCHIVE = f"{ROOT}/tests/fixtures/audax/audax_convnext_fixture.tar.xz"
NAME = "leaf_convnext"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
  out = tmp_path_factory.mktemp("audax_convnext")
  safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
  with tarfile.open(ARCHIVE) as tar:
    tar.extractall(out, **safe)
  state = flax_msgpack.read(str(out / NAME / f"checkpoint_{STEP}"))
  with open(out / NAME / "config.json", encoding="utf-8") as f:
    audax_config = json.load(f)
  with open(out / "convnext_tiny_shapes.json", encoding="utf-8") as f:
    full_size_shapes = json.load(f)
  return {"state": state, "config": audax_config, "parity": np.load(out / NAME / "parity.npz"),
          "full_size_shapes": full_size_shapes}


def ported_config(audax_config, convnext_arguments):
  """What the importer makes of an audax LEAF + ConvNeXt run: the LEAF ,audax config with
  the ConvNeXt backbone sized as the checkpoint, drop path off as in audax."""
  model = audax_config["model"]
  config = import_audax.ported_config({
      "frontend": model["frontend"], "frontend_args": model["frontend_args"],
      "num_classes": model["num_classes"], "multi_label": model["type"] == "multilabel",
      "sample_rate": audax_config["audio_config"]["sample_rate"],
      "crop_seconds": audax_config["input_shape"][0] / audax_config["audio_config"]["sample_rate"],
      "dropout": model["fc_drop_rate"]})
  config.model.backbone = "convnext"
  config.model.convnext.update(convnext_arguments)
  config.model.stochastic_depth = 0.0
  return config


def imported_model(fixture):
  arguments = audax_weights.convnext_arguments(fixture["state"]["params"])
  model = models.build_model(ported_config(fixture["config"], arguments))
  audax_weights.assign(model, import_audax.checkpoint_arrays(fixture["state"]), "test model")
  return model


def test_convnext_arguments_are_read_off_the_checkpoint(fixture):
  model_args = fixture["config"]["model"]["model_args"]
  assert audax_weights.convnext_arguments(fixture["state"]["params"]) == {
      "depths": tuple(model_args["depths"]), "dims": tuple(model_args["dims"])}
  tree = {}                                  # the full-size params tree, from its paths
  for path, shape in fixture["full_size_shapes"].items():
    *parents, leaf = path.split("/")
    node = tree
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = np.broadcast_to(np.float32(0), shape)
  assert audax_weights.convnext_arguments(tree["params"]) == {"depths": (3, 3, 9, 3),
                                                   "dims": (96, 192, 384, 768)}


def test_imported_convnext_reproduces_audax_logits(fixture):
  model = imported_model(fixture)
  parity = fixture["parity"]
  error = relative_error(model(parity["waveform"], training=False).numpy(), parity["logits"])
  print(f"{NAME}: max relative logit error vs audax {error:.2e}")
  assert error <= TOLERANCE


def test_full_size_convnext_tiny_paths_and_shapes_match_audax(fixture):
  """The mapping of ConvNeXt-Tiny (as config.model.convnext's defaults build it) against the
  paths and shapes of audax's own convnext_tiny: no weights, only np.broadcast_to views."""
  config = ported_config(fixture["config"], {})
  config.dataset.crop_seconds = 5.0
  model = models.build_model(config)
  arrays = {path: np.broadcast_to(np.float32(0), shape)
            for path, shape in fixture["full_size_shapes"].items()}
  entries, zeros = audax_weights.weight_map(model)
  audax_weights.check(entries, arrays, "ConvNeXt-Tiny")
  assert not zeros
  assert len(entries) == len(arrays) == len(model.variables)


def _swap_blocks(arrays, stage, a, b):
  prefix = f"params/encoder/ConvNeXtStage_{stage}/ConvNeXtBlock_"
  swapped = dict(arrays)
  for path in arrays:
    if path.startswith(f"{prefix}{a}/"):
      other = path.replace(f"{prefix}{a}/", f"{prefix}{b}/")
      swapped[path], swapped[other] = arrays[other], arrays[path]
  return swapped


def test_a_wrong_block_order_or_keras_layer_norm_epsilon_moves_the_logits(fixture):
  """The parity test can fail: blocks of one stage in another order (same shapes), or
  LayerNorm with Keras's default epsilon instead of flax's, move the logits beyond it."""
  parity = fixture["parity"]
  arrays = import_audax.checkpoint_arrays(fixture["state"])
  model = imported_model(fixture)
  audax_weights.assign(model, _swap_blocks(arrays, 2, 0, 2), "test model")
  error = relative_error(model(parity["waveform"]).numpy(), parity["logits"])
  print(f"blocks 0 and 2 of stage 2 swapped: {error:.2e}")
  assert error > 3 * TOLERANCE

  model = imported_model(fixture)
  for layer in model.backbone.submodules:
    if isinstance(layer, tf_keras.layers.LayerNormalization):
      layer.epsilon = 1e-3
  error = relative_error(model(parity["waveform"]).numpy(), parity["logits"])
  print(f"LayerNorm epsilon 1e-3: {error:.2e}")
  assert error > 3 * TOLERANCE


def test_a_checkpoint_of_another_depth_is_refused_naming_the_parameters(fixture):
  config = ported_config(fixture["config"], {"depths": (2, 1, 2, 1), "dims": (16, 24, 32, 48)})
  model = models.build_model(config)
  unexpected = r"unexpected parameters: params/encoder/ConvNeXtStage_2/ConvNeXtBlock_2/"
  with pytest.raises(audax_weights.CheckpointMismatch, match=unexpected):
    audax_weights.assign(model, import_audax.checkpoint_arrays(fixture["state"]), "a smaller one")
  with pytest.raises(audax_weights.CheckpointMismatch, match="no ConvNeXtStage_0"):
    audax_weights.convnext_arguments({"encoder": {"MBConv_0": {}}})
