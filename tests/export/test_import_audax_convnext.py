"""audax ConvNeXt checkpoints (written by audax's own code: tests/fixtures/audax/
make_audax_convnext_fixture.py) onto our ConvNeXt: logits parity (in process and through
the export.import_audax binary), the full-size parameter paths and shapes, what a wrong
mapping or a wrong numeric does, and audax configs the importer refuses. No JAX needed."""
import copy
import json
import shutil

import numpy as np
import pytest
import tf_keras

from export import audax_weights
from export import flax_msgpack
from export import import_audax
from tests.export.test_import_audax import (ROOT, STEP, TOLERANCE, _run, extract, relative_error,
                                             write_label_map)
from train import checkpoints, models

ARCHIVE = f"{ROOT}/tests/fixtures/audax/audax_convnext_fixture.tar.xz"
NAME = "leaf_convnext"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
  out = extract(ARCHIVE, tmp_path_factory.mktemp("audax_convnext"))
  checkpoint = str(out / NAME / f"checkpoint_{STEP}")
  state = flax_msgpack.read(checkpoint)
  with open(out / NAME / "config.json", encoding="utf-8") as f:
    audax_config = json.load(f)
  with open(out / "convnext_tiny_shapes.json", encoding="utf-8") as f:
    full_size_shapes = json.load(f)
  return {"state": state, "config": audax_config, "parity": np.load(out / NAME / "parity.npz"),
          "full_size_shapes": full_size_shapes, "checkpoint": checkpoint}


def ported_config(audax_config, **convnext_sizes):
  """The importer's config for an audax config.json, its ConvNeXt depths / dims replaced by
  CONVNEXT_SIZES where given."""
  run = import_audax.describe_run(audax_config, "config.json")
  run["convnext"].update(convnext_sizes)
  return import_audax.ported_config(run)


def imported_model(fixture):
  model, _, _, _ = import_audax.build_model(fixture["checkpoint"])
  return model


def _model_args_sizes(fixture):
  model_args = fixture["config"]["model"]["model_args"]
  return {"depths": tuple(model_args["depths"]), "dims": tuple(model_args["dims"])}


def test_convnext_arguments_are_read_off_the_checkpoint(fixture):
  assert audax_weights.convnext_arguments(fixture["state"]["params"]) == _model_args_sizes(fixture)
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
  audax_config = copy.deepcopy(fixture["config"])
  del audax_config["model"]["model_args"]              # audax's convnext_tiny sizes
  config = ported_config(audax_config)
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
  config = ported_config(fixture["config"], depths=(2, 1, 2, 1))
  model = models.build_model(config)
  unexpected = r"unexpected parameters: params/encoder/ConvNeXtStage_2/ConvNeXtBlock_2/"
  with pytest.raises(audax_weights.CheckpointMismatch, match=unexpected):
    audax_weights.assign(model, import_audax.checkpoint_arrays(fixture["state"]), "a smaller one")
  with pytest.raises(audax_weights.CheckpointMismatch, match="no ConvNeXtStage_0"):
    audax_weights.convnext_arguments({"encoder": {"MBConv_0": {}}})


def test_the_binary_writes_a_convnext_workdir_with_audax_logits(fixture, tmp_path):
  workdir = tmp_path / "imported"
  _run("export.import_audax", f"--checkpoint={fixture['checkpoint']}",
       f"--label_map={write_label_map(tmp_path / 'labels.csv')}", f"--workdir={workdir}")
  model, config = checkpoints.restore_model(str(workdir))      # as eval and export load it
  sizes = _model_args_sizes(fixture)
  assert config.model.backbone == "convnext" and config.model.stochastic_depth == 0.0
  assert (tuple(config.model.convnext.depths), tuple(config.model.convnext.dims)) == (
      sizes["depths"], sizes["dims"])
  parity = fixture["parity"]
  error = relative_error(model(parity["waveform"], training=False).numpy(), parity["logits"])
  print(f"{NAME} through the binary: max relative logit error vs audax {error:.2e}")
  assert error <= TOLERANCE


def test_without_config_json_the_convnext_sizes_come_from_the_checkpoint(fixture, tmp_path):
  shutil.copy(fixture["checkpoint"], tmp_path)
  _, run, _ = import_audax.load_checkpoint(str(tmp_path / f"checkpoint_{STEP}"))
  assert run["backbone"] == "convnext" and run["convnext"] == _model_args_sizes(fixture)


@pytest.mark.parametrize("changes,message", [
    ({"arch": "convnext_huge"}, r"model.arch='convnext_huge' is not supported"),
    ({"model_args": {"depths": [2, 1, 3, 1], "patch_size": 2}},
     r"model.model_args \['patch_size'\] are not supported for convnext_tiny"),
    ({"model_args": {"drop_path_prob": 0.1}}, r"model_args \['drop_path_prob'\]"),
    ({"model_args": {"depths": [2, 1, 3]}}, r"model_args.depths=\[2, 1, 3\] is not 4 positive"),
])
def test_convnext_configs_that_do_not_fit_are_clear_errors(fixture, changes, message):
  audax_config = copy.deepcopy(fixture["config"])
  audax_config["model"].update(changes)
  with pytest.raises(import_audax.BadAudaxRun, match=message):
    import_audax.describe_run(audax_config, "config.json")
