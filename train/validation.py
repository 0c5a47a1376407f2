"""Checks of a run's config and data before any work starts, and the config a run records.

    validate_config(config)               ValueError listing every bad value
    check_splits(config, info, mode)      RunError unless the splits the mode reads hold examples
    check_single_label(config, info, mode) RunError naming a clip without exactly one label
                                          (multiclass configs)
    resolved_config(config, info)         a copy with model.num_classes decided (the caller's
                                          config is left as given)
    prepare_run(config, workdir, mode, tpu) these checks in their order, the strategy created
                                          among them: (Workdir, dataset info, strategy)
"""
import os

import tensorflow as tf

import tf_frontends
from train import models
from train import strategy
from train import workdir as workdir_lib
from train.data import dataset_info
from train.data import input_pipeline
from train.errors import RunError

MODES = ("train", "eval", "train_and_eval")


def validate_config(config) -> None:
  """Raises ValueError on a config that cannot work, before any work starts."""
  errors = []
  name = config.frontend.name
  composed = name == tf_frontends.COMPOSITION
  if not composed and name not in tf_frontends.FRONTENDS:
    errors.append(f"frontend.name={name!r} is not one of "
                  f"{sorted(tf_frontends.FRONTENDS) + [tf_frontends.COMPOSITION]}")
  elif not composed and config.frontend.get("n_filters", 0) < 1:
    errors.append(f"frontend.n_filters must be >= 1, got {config.frontend.get('n_filters')}")
  else:
    try:
      models.create_frontend(config)
    except (TypeError, ValueError) as e:
      maker = "composition_config" if composed else "frontend_config"
      errors.append(f"frontend {name!r} refuses its arguments: {e} (build the frontend "
                    f"block with train.configs.default.{maker})")
  if config.model.backbone not in models.BACKBONES:
    errors.append(f"model.backbone={config.model.backbone!r} is not one of "
                  f"{sorted(models.BACKBONES)}")
  if config.model.type not in models.MODEL_TYPES:
    errors.append(f"model.type={config.model.type!r} is not one of {models.MODEL_TYPES}")
  for key in ("batch_size", "eval_batch_size", "steps_per_loop", "log_every_steps",
              "checkpoint_every_steps", "max_checkpoints_to_keep"):
    if config[key] < 1:
      errors.append(f"{key} must be >= 1, got {config[key]}")
  if config.num_train_steps <= 0 and config.num_epochs < 1:
    errors.append(f"num_epochs must be >= 1 (or num_train_steps > 0), got {config.num_epochs}")
  if not 0.0 <= config.model.dropout < 1.0:
    errors.append(f"model.dropout must be in [0, 1), got {config.model.dropout}")
  if not 0.0 <= config.model.stochastic_depth < 1.0:
    errors.append(f"model.stochastic_depth must be in [0, 1), got {config.model.stochastic_depth}")
  if config.dataset.crop_seconds <= 0:
    errors.append(f"dataset.crop_seconds must be > 0, got {config.dataset.crop_seconds}")
  if config.optimizer.base_learning_rate <= 0:
    errors.append(f"optimizer.base_learning_rate must be > 0, got "
                  f"{config.optimizer.base_learning_rate}")
  for key in ("frontend_lr_multiplier", "weight_decay", "clip_global_norm"):
    if not config.optimizer[key] >= 0:         # NaN too
      errors.append(f"optimizer.{key} must be >= 0, got {config.optimizer[key]}")
  if not config.dataset.mixup_alpha >= 0:
    errors.append(f"dataset.mixup_alpha must be >= 0 (0: no mixup), got "
                  f"{config.dataset.mixup_alpha}")
  if config.mixed_precision not in models.PRECISION_POLICIES:
    errors.append(f"mixed_precision={config.mixed_precision!r} is not one of "
                  f"{tuple(models.PRECISION_POLICIES)}")
  if config.strategy not in strategy.STRATEGIES:
    errors.append(f"strategy={config.strategy!r} is not one of {strategy.STRATEGIES}")
  if config.eval_every_epochs < 0:
    errors.append(f"eval_every_epochs must be >= 0, got {config.eval_every_epochs}")
  if not config.dataset.data_dir:
    errors.append("dataset.data_dir is empty: pass --config.dataset.data_dir=DIR")
  if errors:
    raise ValueError("Bad config:\n  " + "\n  ".join(errors))


def _check_info(info, path: str) -> None:
  """RunError naming the file and key unless dataset_info.json has what training reads."""
  if not isinstance(info, dict):
    raise RunError(f"{path} is not what data prep writes: not a JSON object")
  expected = {"classes": list, "sample_rate": int, "splits": dict}
  for key, kind in expected.items():
    if not isinstance(info.get(key), kind):
      raise RunError(f"{path} is not what data prep writes: "
                     + (f"no {key!r}" if key not in info else f"{key!r} is not a {kind.__name__}")
                     + "; rerun data prep into that folder")
  for split, entry in info["splits"].items():
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
      raise RunError(f"{path} is not what data prep writes: split {split!r} lists no 'files'")


def splits_read(config, mode: str) -> list:
  """The splits of the data a run in `mode` reads."""
  return {"train": [config.dataset.train_split],
          "eval": [config.dataset.eval_split] + [config.dataset.test_split] * bool(
              config.dataset.test_split),
          "train_and_eval": [config.dataset.train_split, config.dataset.eval_split]}[mode]


def check_splits(config, info: dict, mode: str) -> None:
  """Raises RunError unless dataset_info.json is well formed and the splits this mode reads
  exist, hold examples and have all their shard files."""
  data_dir = config.dataset.data_dir
  path = dataset_info.path(data_dir)
  _check_info(info, path)
  for split in splits_read(config, mode):
    if split not in info["splits"]:
      raise RunError(f"{path} has no split {split!r} (it has {sorted(info['splits'])})")
    entry = info["splits"][split]
    if entry.get("num_examples", 0) < 1:
      raise RunError(
          f"Split {split!r} of {path} has no usable examples (data prep skipped "
          f"{entry.get('num_skipped', 0)}: see 'skipped' in that file); nothing to "
          f"{'train' if split == config.dataset.train_split else 'evaluate'} on.")
    missing = [name for name in entry["files"]
               if not tf.io.gfile.exists(os.path.join(data_dir, name))]
    if missing:
      raise RunError(f"Split {split!r} of {path} lists shards that are not there: "
                     f"{', '.join(os.path.join(data_dir, m) for m in missing[:3])}"
                     + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else "")
                     + "; rerun data prep into that folder")


def resolved_config(config, info: dict):
  """A copy of config with model.num_classes taken from the data (dataset_info.json) when
  unset (<= 0); a set one must equal the data's class count."""
  resolved = config.copy_and_resolve_references()
  num_classes = len(info["classes"])
  if resolved.model.num_classes <= 0:
    resolved.model.num_classes = num_classes
  elif resolved.model.num_classes != num_classes:
    raise RunError(f"config.model.num_classes={resolved.model.num_classes}, but "
                   f"{dataset_info.path(config.dataset.data_dir)} has {num_classes} classes.")
  return resolved


def check_single_label(config, info: dict, mode: str) -> None:
  """For a multiclass config: RunError naming the first clip (id, shard) of a split the mode
  reads whose labels are not exactly one class. Reads every record's labels once (the audio
  bytes are read, not decoded); a multilabel config is not checked."""
  if config.model.type != "multiclass":
    return
  data_dir = config.dataset.data_dir
  features = {"labels": tf.io.VarLenFeature(tf.int64), "id": tf.io.FixedLenFeature([], tf.string)}
  for split in splits_read(config, mode):
    for shard in dataset_info.check_shards(data_dir, info, split):
      records = tf.data.TFRecordDataset(shard).batch(1024).map(
          lambda r: tf.io.parse_example(r, features))
      for batch in records:
        labels = tf.RaggedTensor.from_sparse(batch["labels"]).to_list()
        for example_id, clip_labels in zip(batch["id"].numpy(), labels):
          if len(set(clip_labels)) != 1:
            raise RunError(
                f"config.model.type is multiclass, but clip {example_id.decode()!r} of {shard} "
                f"(split {split!r}) has {len(set(clip_labels))} labels {sorted(set(clip_labels))}; "
                "multiclass data has exactly one label per clip (or train it as multilabel).")


def prepare_run(config, workdir: str, mode: str, tpu: str = ""):
  """What every mode does before it reads or writes the workdir: the config, the workdir path
  and the data checked, the strategy created. -> (Workdir of this worker, dataset info,
  strategy). RunError / ValueError before anything is written."""
  if mode not in MODES:
    raise ValueError(f"mode={mode!r} is not one of {MODES}")
  validate_config(config)
  workdir = workdir_lib.Workdir(workdir)
  workdir.check_is_folder()
  info = dataset_info.read(config.dataset.data_dir)
  check_splits(config, info, mode)
  run_strategy = strategy.create_strategy(config.strategy, tpu)
  # After the strategy (reading records starts TensorFlow's runtime, and multi-worker
  # collectives must be configured before that), still before anything is written.
  input_pipeline.check_data(config.dataset.data_dir, info, splits_read(config, mode))
  check_single_label(config, info, mode)
  return workdir.for_worker(strategy.worker_name(run_strategy)), info, run_strategy
