r"""Trains and evaluates an audio classifier (frontend + tf-models backbone).

python -m train.main --config=train/configs/demo.py:leaf --workdir=/tmp/demo_leaf \
    [--mode=train|eval|train_and_eval] [--config.batch_size=16] [--tpu=grpc://...]

The strategy: --tpu -> TPUStrategy; TF_CONFIG with several tasks -> MultiWorkerMirrored;
several GPUs -> Mirrored; else the default device (config.strategy forces one).
"""
from train import console  # first: TensorFlow's C++ log level (off unless --verbose)
import legacy_keras  # noqa: F401,E402  (before TF: tf.keras must be tf_keras)

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from train import preemption
from train import evaluation
from train import train_loop
from train import validation
from train import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Checkpoints, config.json, eval_results.json, TensorBoard logs.")
flags.DEFINE_enum("mode", "train_and_eval", list(validation.MODES), "What to run.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address; empty: no TPU.")
config_flags.DEFINE_config_file("config", None, "Config file (ml_collections).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])
console.define_verbose_flag()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  validation.validate_config(FLAGS.config)     # fail before TF allocates anything
  try:
    with preemption.SigtermFlag() as sigterm:
      results = train_loop.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.mode,
                                              FLAGS.tpu, stop=sigterm)
  except preemption.Preempted as e:
    logging.warning("%s", e)
    sys.exit(preemption.EXIT_STATUS)
  except (workdir_lib.RunError, FileNotFoundError) as e:
    print(f"train failed: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  if "centre_crop" in results:
    print(evaluation.format_results(results), flush=True)
  logging.info("done")


def run():
  """Console-script entry point (tf-frontends-train)."""
  app.run(main)


if __name__ == "__main__":
  run()
