r"""Imports an audax (JAX/flax) LEAF or SincNet + EfficientNet-B0 or ConvNeXt checkpoint as a
workdir.

python -m export.import_audax --checkpoint=PATH/best_ckpt_XXXX \
    [--audax_config=PATH/config.json] --label_map=class_labels_indices.csv --workdir=DIR \
    [--data_dir=AUDIOSET_TFRECORDS]

The workdir is what train.main writes: config.json (train/configs/
audioset.py:<frontend>,audax with the checkpoint's sizes; for a ConvNeXt also
model.backbone=convnext, model.convnext's depths and dims, and model.stochastic_depth=0 as
audax's ConvNeXt never drops paths), run_info.json
(classes, sample rate, crop length, model fingerprint), and the weights as step 0 in
checkpoints/ and best/. So `train.main --mode=eval` evaluates it, `train.main` with the
same config fine-tunes it, and `export.main` exports it. The weights are copied
exactly; the model computes what audax's does in float32 (logits within 1e-4 relative,
tests/export/test_import_audax.py and test_import_audax_convnext.py). Checkpoints trained
on TPUs differ from their TPU logits in the last digits, as any float32 CPU/GPU run of
them does.

Without --audax_config, the run's config.json beside the checkpoint is used; without
that, the frontend, filter count, backbone (EfficientNet-B0, or a ConvNeXt with its
depths and widths) and class count are read off the checkpoint and the seed recipe is
assumed for the rest (multi-label, 16 kHz, 5 s crops, dropout 0.4).
--data_dir (optional) is recorded as the run's dataset (export.main verifies on it).

Bad input (not a flax msgpack file, missing / extra / mis-shaped parameters, an
unsupported model or frontend, a label map of another size) stops the import with an
error naming the file and parameter; the workdir is written to a temporary folder and
renamed at the end, so nothing half-written is left.
"""
import legacy_keras  # noqa: F401  (first: tf.keras must be tf_keras)

import json
import os
import shutil
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from export import audax_weights
from export import flax_msgpack
from tf_frontends import compression
from train.data import manifests
from train import models
from train import optimizer as optimizer_lib
from train import fingerprint
from train import workdir as workdir_lib
from train.configs import audioset

# audax frontend class -> (our frontend name, its filter parameter)
FRONTENDS = {"Leaf": ("leaf", "gabor_kernel"), "SincNet": ("sincnet", "sinc_kernel")}
# audax frontend_args we carry over / that only shape the (replaced) initial values.
FRONTEND_ARGS = ("n_filters", "sample_rate", "window_len", "window_stride")
INIT_ONLY_ARGS = ("min_freq", "max_freq", "complex_conv_init")
AUDAX_DEFAULT_FILTERS = 40          # audax's Leaf / SincNet default n_filters
SEED_RECIPE = {"multi_label": True, "sample_rate": 16000, "crop_seconds": 5.0, "dropout": 0.4}
# audax.models.convnext_* (one ConvNeXt class; their drop_path_rate is never passed on to the
# blocks, so it changes nothing): arch -> default (depths, dims), which model_args override.
CONVNEXT_ARCHS = {"convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
                  "convnext_small": ((3, 3, 27, 3), (96, 192, 384, 768)),
                  "convnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
                  "convnext_large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
                  "convnext_xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048))}
# model_args per backbone that do not change what a trained model computes.
TRAINING_ONLY_ARGS = {"efficientnet": {"drop_path_prob"}, "convnext": {"drop_path_rate"}}


class BadAudaxRun(ValueError):
  """The audax config describes a model this importer cannot reproduce."""


def _infer_run(params: dict, source: str) -> dict:
  """The run's description read off the checkpoint alone (the seed recipe for the rest)."""
  frontend_params = params.get("frontend")
  if not isinstance(frontend_params, dict):
    raise BadAudaxRun(f"{source}: no params/frontend: not a LEAF or SincNet model (a "
                      "spectrogram model?); only audax's Leaf and SincNet frontends are supported")
  conv = frontend_params.get("complex_conv", {})
  for name, (_, kernel_name) in FRONTENDS.items():
    if kernel_name in conv:
      frontend = name
      break
  else:
    raise BadAudaxRun(f"{source}: unknown frontend (params/frontend/complex_conv holds "
                      f"{sorted(conv)}); supported: {sorted(FRONTENDS)}")
  n_filters = int(np.shape(conv[FRONTENDS[frontend][1]])[0])
  encoder = params.get("encoder") if isinstance(params.get("encoder"), dict) else {}
  if "ConvNeXtStage_0" in encoder:
    try:
      backbone = {"backbone": "convnext", "convnext": audax_weights.convnext_arguments(params)}
    except audax_weights.CheckpointMismatch as e:
      raise BadAudaxRun(f"{source}: {e}") from None
  else:       # EfficientNet-B0, or what the weight check will name as missing / unexpected
    backbone = {"backbone": "efficientnet"}
  return {"frontend": frontend, "frontend_args": {"n_filters": n_filters}, **backbone,
          "num_classes": _num_outputs(params, source), **SEED_RECIPE}


def _num_outputs(params: dict, source: str) -> int:
  kernel = params.get("fc", {}).get("kernel") if isinstance(params.get("fc"), dict) else None
  if kernel is None or np.ndim(kernel) != 2:
    raise BadAudaxRun(f"{source}: no 2-D params/fc/kernel: not an audax Classifier checkpoint")
  return int(np.shape(kernel)[1])


def describe_run(audax_config: dict, source: str) -> dict:
  """The model-defining fields of an audax config.json, checked."""
  model = audax_config.get("model")
  if not isinstance(model, dict):
    raise BadAudaxRun(f"{source}: no 'model' section: not an audax run config")
  arch = model.get("arch")
  if arch == "efficientnet_b0":
    backbone = {"backbone": "efficientnet"}
  elif arch in CONVNEXT_ARCHS:
    backbone = {"backbone": "convnext", "convnext": dict(zip(("depths", "dims"),
                                                             CONVNEXT_ARCHS[arch]))}
  else:
    raise BadAudaxRun(f"{source}: model.arch={arch!r} is not supported (only efficientnet_b0 "
                      f"and {', '.join(CONVNEXT_ARCHS)})")
  frontend = model.get("frontend")
  if frontend not in FRONTENDS:
    raise BadAudaxRun(f"{source}: unknown frontend model.frontend={frontend!r}; "
                      f"supported: {sorted(FRONTENDS)}")
  args = dict(model.get("frontend_args") or {})
  unsupported = sorted(set(args) - set(FRONTEND_ARGS) - set(INIT_ONLY_ARGS))
  if unsupported:
    raise BadAudaxRun(f"{source}: model.frontend_args {unsupported} change audax's "
                      "frontend in ways this importer does not reproduce")
  model_args = dict(model.get("model_args") or {})
  training_only = TRAINING_ONLY_ARGS[backbone["backbone"]]
  sizes = set(backbone.get("convnext", ()))
  if set(model_args) - training_only - sizes:
    raise BadAudaxRun(
        f"{source}: model.model_args {sorted(set(model_args) - training_only - sizes)} are not "
        f"supported for {arch} (only {', '.join(sorted(sizes))}{' and ' if sizes else ''}"
        f"{', '.join(sorted(training_only))}, which changes nothing at inference)")
  for name in sizes & set(model_args):
    value = model_args[name]
    if (not isinstance(value, (list, tuple)) or len(value) != 4
        or not all(isinstance(v, int) and v > 0 for v in value)):
      raise BadAudaxRun(f"{source}: model.model_args.{name}={value!r} is not 4 positive integers")
    backbone["convnext"][name] = tuple(value)
  kind = model.get("type", "multilabel")
  if kind not in ("multilabel", "multiclass"):
    raise BadAudaxRun(f"{source}: model.type={kind!r} is neither multilabel nor multiclass")
  sample_rate = int(args.get("sample_rate", 16000))       # audax's frontends' default
  audio_rate = int((audax_config.get("audio_config") or {}).get("sample_rate", sample_rate))
  if audio_rate != sample_rate:
    raise BadAudaxRun(f"{source}: audio_config.sample_rate={audio_rate} but the frontend runs "
                      f"at {sample_rate} Hz (model.frontend_args.sample_rate)")
  if frontend == "SincNet" and sample_rate != 16000:
    raise BadAudaxRun(f"{source}: SincNet at {sample_rate} Hz: audax's sinc taps assume "
                      "16 kHz whatever the rate, which this importer does not reproduce")
  input_shape = audax_config.get("input_shape") or [int(5 * sample_rate)]
  args.setdefault("n_filters", AUDAX_DEFAULT_FILTERS)
  return {"frontend": frontend,
          "frontend_args": {k: args[k] for k in FRONTEND_ARGS if k in args}, **backbone,
          "num_classes": int(model.get("num_classes", -1)),
          "multi_label": kind == "multilabel", "sample_rate": sample_rate,
          "crop_seconds": float(input_shape[0]) / sample_rate,
          "dropout": float(model.get("fc_drop_rate", 0.0))}


def ported_config(run: dict, data_dir: str = ""):
  """Our ConfigDict for the run: train/configs/audioset.py:<frontend>,audax, sized as the
  checkpoint."""
  name, _ = FRONTENDS[run["frontend"]]
  config = audioset.get_config(f"{name},audax")
  config.frontend.update(run["frontend_args"])
  if run["backbone"] == "convnext":
    config.model.backbone = "convnext"
    config.model.convnext.update(run["convnext"])
    config.model.stochastic_depth = 0.0     # audax's ConvNeXt never drops paths, even in training
  config.model.num_classes = run["num_classes"]
  config.model.type = "multilabel" if run["multi_label"] else "multiclass"
  config.model.dropout = run["dropout"]
  config.dataset.crop_seconds = run["crop_seconds"]
  config.dataset.data_dir = data_dir
  return config


def _warn_about_clipped_pcen(params: dict) -> None:
  """Our PCEN keeps delta >= MIN_DELTA and alpha >= 0 (audax does not): say where it differs."""
  pcen = params.get("frontend", {}).get("compression", {})
  for name, low in (("delta", compression.MIN_DELTA), ("alpha", 0.0)):
    if name in pcen and np.any(np.asarray(pcen[name]) < low):
      logging.warning("params/frontend/compression/%s has %d value(s) below %g, which our PCEN "
                      "clips: those channels will differ from audax's outputs",
                      name, int(np.sum(np.asarray(pcen[name]) < low)), low)


def load_checkpoint(checkpoint: str, audax_config: str = ""):
  """(state dict, run description, config source) of an audax checkpoint file."""
  state = flax_msgpack.read(checkpoint)
  if not isinstance(state.get("params"), dict):
    raise flax_msgpack.NotAFlaxCheckpoint(
        f"{checkpoint} is a msgpack file but not an audax training state: no 'params' map "
        f"(top-level keys: {sorted(state)[:8]})")
  if not audax_config and os.path.isfile(os.path.join(os.path.dirname(checkpoint), "config.json")):
    audax_config = os.path.join(os.path.dirname(checkpoint), "config.json")
  if audax_config:
    try:
      with open(audax_config, encoding="utf-8") as f:
        run = describe_run(json.load(f), audax_config)
    except json.JSONDecodeError as e:
      raise BadAudaxRun(f"{audax_config} is not JSON: {e}") from None
    if run["num_classes"] <= 0:              # not in the config: the checkpoint's outputs
      run["num_classes"] = _num_outputs(state["params"], checkpoint)
    return state, run, audax_config
  source = f"{checkpoint} (no config.json: sizes from the checkpoint, the rest the seed recipe)"
  return state, _infer_run(state["params"], checkpoint), source


def checkpoint_arrays(state: dict) -> dict:
  """{"params/...": array, "batch_stats/...": array} of an audax training state."""
  return {**flax_msgpack.flatten(state["params"], "params/"),
          **flax_msgpack.flatten(state.get("batch_stats") or {}, "batch_stats/")}


def build_model(checkpoint: str, audax_config: str = "", data_dir: str = ""):
  """(model with the checkpoint's weights, our config, run description, audax state)."""
  state, run, source = load_checkpoint(checkpoint, audax_config)
  config = ported_config(run, data_dir)
  model = models.build_model(config, run["sample_rate"])
  arrays = checkpoint_arrays(state)
  backbone = ("EfficientNet-B0" if run["backbone"] == "efficientnet" else
              f"ConvNeXt (depths {run['convnext']['depths']}, dims {run['convnext']['dims']})")
  what = (f"audax {backbone} + {run['frontend']} with {run['frontend_args']['n_filters']} "
          f"filters and {run['num_classes']} classes (from {source})")
  try:
    audax_weights.assign(model, arrays, what)
  except audax_weights.CheckpointMismatch as e:
    raise audax_weights.CheckpointMismatch(f"{checkpoint}: {e}") from None
  _warn_about_clipped_pcen(state["params"])
  return model, config, run, state


def _write_workdir(tmp: str, model, config, run, classes, provenance: dict) -> None:
  workdir = workdir_lib.Workdir(tmp)
  workdir.describe(config, classes=classes, sample_rate=run["sample_rate"],
                   crop_seconds=run["crop_seconds"], multi_label=run["multi_label"],
                   model_fingerprint=fingerprint.model_fingerprint(model))
  optimizer, _ = optimizer_lib.create_optimizer(config, model, 1, 1)
  optimizer.build(model.trainable_variables)       # slots exist, as the trainer restores them
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  for directory in (workdir.checkpoints_dir, workdir.best_dir):
    tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1).save(0)
  workdir.write_imported_from(provenance)


def import_checkpoint(checkpoint: str, label_map: str, workdir: str, *,
                      audax_config: str = "", data_dir: str = ""):
  """Writes WORKDIR from an audax checkpoint; returns the model. See the module doc."""
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
    raise FileExistsError(f"--workdir {workdir} exists and is not an empty folder; "
                          "the import writes a new workdir and overwrites nothing")
  classes = manifests.load_label_map(label_map)
  model, config, run, state = build_model(checkpoint, audax_config, data_dir)
  if len(classes) != run["num_classes"]:
    raise ValueError(f"label map {label_map} has {len(classes)} classes, the checkpoint "
                     f"{checkpoint} {run['num_classes']} (params/fc/kernel)")
  provenance = {"checkpoint": os.path.abspath(checkpoint), "audax_step": int(state.get("step", -1)),
                "audax_run": run}
  parent = os.path.dirname(workdir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(workdir)}.importing-", dir=parent)
  try:
    _write_workdir(tmp, model, config, run, classes, provenance)
    os.rename(tmp, workdir)     # onto a missing or empty folder: atomic
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)   # only the temporary folder this call created
    raise
  return model


FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("checkpoint", None, "audax checkpoint file (checkpoint_<step> / best_ckpt_<step>).")
  flags.DEFINE_string("audax_config", "", "The run's audax config.json (default: the one "
                      "beside the checkpoint, if any).")
  flags.DEFINE_string("label_map", None, "class_labels_indices.csv (index,mid,display_name) or "
                      "any label map prepare_data reads; one row per output of the checkpoint.")
  flags.DEFINE_string("workdir", None, "The workdir to create (must not exist or be empty).")
  flags.DEFINE_string("data_dir", "", "Optional: prepared TFRecords recorded as the run's "
                      "dataset (export.main verifies on its eval split).")
  flags.mark_flags_as_required(["checkpoint", "label_map", "workdir"])


def main(argv):
  """Bad input is one line on stderr naming the file (exit 1; 2 for stray arguments), not the
  flag help and not a traceback."""
  if len(argv) > 1:
    print(f"import_audax failed: unexpected arguments {argv[1:]}", file=sys.stderr, flush=True)
    sys.exit(2)
  try:
    import_checkpoint(FLAGS.checkpoint, FLAGS.label_map, FLAGS.workdir,
                      audax_config=FLAGS.audax_config, data_dir=FLAGS.data_dir)
  except (ValueError, FileNotFoundError, FileExistsError) as e:
    print(f"import_audax failed: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  print(f"Imported {FLAGS.checkpoint} into {os.path.abspath(FLAGS.workdir)}", flush=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)
