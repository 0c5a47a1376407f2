r"""Trains and evaluates an audio classifier (frontend + tf-models backbone).

python -m train.main --config=train/configs/demo.py:leaf --workdir=/tmp/demo_leaf \
    [--mode=train|eval|train_and_eval] [--config.batch_size=16] [--tpu=grpc://...]

The strategy: --tpu -> TPUStrategy; TF_CONFIG with several tasks -> MultiWorkerMirrored;
several GPUs -> Mirrored; else the default device (config.strategy forces one).

Exit status: 0 done; 1 the run could not go on (a workdir, checkpoint or data problem, one line
on stderr); 2 a usage error (a bad flag, config value or --config. key); 128 + signal after
SIGTERM / SIGINT (130 for Ctrl-C), a checkpoint saved first when training steps were running.
--verbose adds the traceback to any of these messages.
"""
from train import console  # first: TensorFlow's C++ log level (off unless --verbose)
import legacy_keras  # noqa: F401,E402  (before TF: tf.keras must be tf_keras)

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
from tensorflow import errors as tf_errors

from train import preemption
from train import evaluation
from train import train_loop
from train import validation

FLAGS = flags.FLAGS
USAGE_ERROR = 2
flags.DEFINE_string("workdir", None, "Checkpoints, config.json, eval_results.json, TensorBoard logs.")
flags.DEFINE_enum("mode", "train_and_eval", list(validation.MODES), "What to run.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address; empty: no TPU.")
config_flags.DEFINE_config_file("config", None, "Config file (ml_collections).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])
console.define_verbose_flag()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    validation.validate_config(FLAGS.config)     # fail before TF allocates anything
  except ValueError as e:
    console.fail("train", e, USAGE_ERROR)
  try:
    with preemption.StopSignals() as stop:
      if FLAGS.mode == "eval":
        results = evaluation.evaluate_run(FLAGS.config, FLAGS.workdir, FLAGS.tpu)
      else:
        results = train_loop.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.mode,
                                                FLAGS.tpu, stop=stop)
  except preemption.Preempted as e:
    logging.warning("%s", e)
    sys.exit(preemption.exit_status(e.signum))
  # ValueError: RunError and the data readers' (a corrupt dataset_info.json); OpError: a full
  # disk while saving; FloatingPointError: a diverged loss.
  except (ValueError, OSError, tf_errors.OpError, FloatingPointError) as e:
    console.fail("train", e)
  if "centre_crop" in results:
    print(evaluation.format_results(results), flush=True)
  if "test" in results:
    print(evaluation.format_results(results["test"]), flush=True)
  logging.info("done")


def _parse_flags(argv):
  """absl's parsing, with a --config.KEY=VALUE that the config cannot take as a usage error
  naming it (ml_collections raises AttributeError / KeyError / ValueError / TypeError)."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    console.fail("train", e, USAGE_ERROR)
  except (AttributeError, KeyError, ValueError, TypeError) as e:
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    named = [a for a in overrides if a[len("--config."):].split("=")[0].split(".")[-1] in str(e)]
    console.fail("train", ValueError(
        f"{' '.join(named or overrides)}: not a key of the config, or a value of another type "
        f"({type(e).__name__}: {str(e).strip(chr(34))})"), USAGE_ERROR)


def run():
  """Console-script entry point (tf-frontends-train)."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
