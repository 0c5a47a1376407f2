r"""Defaults every config inherits: the seed recipe (EfficientNet-B0 on AudioSet, 64 filters).

Configs override only what differs. `--config.key=value` overrides any field:

python -m train.main --config=train/configs/audioset.py:leaf --workdir=DIR \
    --config.dataset.data_dir=/data/audioset_tfrecords
"""
import ml_collections

from train.configs import frontend_arguments


def frontend_config(name: str, **arguments) -> ml_collections.ConfigDict:
  """{"name": name, every constructor argument of that frontend: its value}.

  All arguments are listed (at their defaults unless given), so `--config.frontend.<arg>=...`
  can set any of them, type-checked, and a misspelt one is refused by the locked config.
  The defaults are read from the frontend's source (`frontend_arguments`): no TensorFlow.
  """
  values = frontend_arguments.defaults(name)
  unknown = sorted(set(arguments) - set(values))
  if unknown:
    raise ValueError(f"frontend {name!r} has no argument(s) {unknown}; it takes {list(values)}")
  return ml_collections.ConfigDict({"name": name, **values, **arguments})


def composition_config(serialized: dict) -> ml_collections.ConfigDict:
  """{"name": "composition", "config": serialized}: a frontend of your own as the run's.

  serialized: `tf_keras.layers.serialize(frontend)` of a `tf_frontends.Frontend(...)`
  composition (or of any tf_frontends frontend), as plain data (e.g. its JSON pasted into
  a config file), so the config still needs no TensorFlow. Trains and exports like a
  named frontend; its sizes (hop, window, filters) follow from its blocks.
  """
  if not isinstance(serialized, dict) or "class_name" not in serialized:
    raise ValueError("composition_config takes the dict tf_keras.layers.serialize(frontend) "
                     f"returns; got {serialized!r:.200}")
  return ml_collections.ConfigDict({"name": frontend_arguments.composition_name(),
                                    "config": serialized})


def get_config():
  config = ml_collections.ConfigDict()

  config.dataset = ml_collections.ConfigDict()
  config.dataset.data_dir = ""           # TFRecord shards + dataset_info.json (prepare_data)
  config.dataset.train_split = "train"
  config.dataset.eval_split = "eval"     # scored during training; chooses the best checkpoint
  config.dataset.test_split = ""         # scored by --mode=eval next to eval_split ("": none)
  config.dataset.crop_seconds = 5.0      # random crops for training, centre crops for eval
  config.dataset.mixup_alpha = 0.0
  config.dataset.full_clip_eval = True   # also score whole clips (mean over crop-sized windows)

  # name + every keyword argument of tf_frontends.get (n_filters sizes the backbone's input)
  config.frontend = frontend_config("leaf", n_filters=64)

  config.model = ml_collections.ConfigDict()
  config.model.backbone = "efficientnet"  # efficientnet | resnet | mobilenet | convnext
  # keyword arguments of the tf-models backbone class, one block per backbone
  # (se_bias: ours; False builds the squeeze-excitation convs without bias, as audax's)
  config.model.efficientnet = dict(model_id="b0", se_ratio=0.25, activation="swish", se_bias=True)
  config.model.resnet = dict(model_id=18, depth_multiplier=1.0)
  config.model.mobilenet = dict(model_id="MobileNetV3Small", filter_size_scale=1.0)
  # audax's convnext_tiny (train/convnext.py); tuples, so --config.model.convnext.dims='(...)'
  config.model.convnext = dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), layer_scale_init=1e-6)
  config.model.stochastic_depth = 0.2
  config.model.use_sync_bn = True        # BN statistics over the global batch
  config.model.norm_momentum = 0.99      # BN moving averages; short runs want less (0.9)
  # False: BN on plain TF ops (as sync BN), moving variance of the biased batch variance
  config.model.fused_norm = True
  config.model.dropout = 0.4             # before the head
  config.model.standardize_waveform = False   # each clip to mean 0, std 1 before the frontend
  config.model.num_classes = -1          # -1: from dataset_info.json
  # multilabel: sigmoid scores, binary cross-entropy, best checkpoint by mAP;
  # multiclass: one label per clip, softmax scores, cross-entropy, best checkpoint by accuracy
  config.model.type = "multilabel"
  config.model.spec_augment = dict(enabled=True, num_freq_masks=2, max_freq_width=8,
                                   num_time_masks=2, max_time_width=50,
                                   sampling="independent")  # train/spec_augment.py: the laws

  config.batch_size = 1024               # global; split across replicas
  config.num_epochs = 50
  config.num_train_steps = -1            # > 0 overrides num_epochs
  config.steps_per_epoch = -1            # -1: train examples // batch_size

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.base_learning_rate = 5e-4   # scaled by batch_size / 256
  config.optimizer.weight_decay = 1e-6
  config.optimizer.epsilon = 1e-7              # Adam's
  config.optimizer.optax_form = False          # True: optax.adamw's step (train/optimizer.py)
  config.optimizer.warmup_epochs = 5.0
  config.optimizer.end_learning_rate = 0.0
  config.optimizer.frontend_lr_multiplier = 1.0
  config.optimizer.clip_global_norm = 0.0      # 0: no clipping

  config.mixed_precision = ""            # "" | "bfloat16" | "float16" (frontend stays float32)
  config.jit_compile = False             # XLA-compile the train step (TPUs compile it always)
  config.strategy = "auto"               # auto | default | mirrored | multi_worker | tpu
  config.seed = 0

  config.steps_per_loop = 50             # training steps per tf.function call
  config.log_every_steps = 50
  config.checkpoint_every_steps = 1000   # also at the end of each epoch
  config.max_checkpoints_to_keep = 3
  config.eval_every_epochs = 1
  config.eval_batch_size = 64            # global
  return config
