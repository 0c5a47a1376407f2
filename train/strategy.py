"""The tf.distribute strategy of a run, and which worker writes the workdir.

    create_strategy("auto", tpu="")   TPU / multi-worker / mirrored / the default device
    is_chief(strategy)                this worker writes config.json, logs and eval results
    worker_name(strategy)             "" on the chief, else "worker_1" (train.workdir.Workdir's)
"""
import json
import os
import signal
import threading

from absl import logging
import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def create_strategy(name: str = "auto", tpu: str = "") -> tf.distribute.Strategy:
  """auto: TPU if `tpu` is given, multi-worker if TF_CONFIG names several tasks,
  mirrored over the GPUs if there are several, else the default strategy."""
  if name == "auto":
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if tpu:
      name = "tpu"
    elif sum(len(tasks) for tasks in cluster.values()) > 1:
      name = "multi_worker"
    elif len(tf.config.list_logical_devices("GPU")) > 1:
      name = "mirrored"
    else:
      name = "default"
  if name == "tpu":
    # Connecting can hang for minutes on a wrong address: say what the process waits for.
    logging.info("Connecting to TPU %r (SIGTERM / Ctrl-C stop the wait)...", tpu)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if name == "multi_worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _give_signals_back_to_python()
    return strategy
  if name == "mirrored":
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_name(strategy) -> str:
  """Empty on the chief; "<task type>_<task id>" on the other workers (they save their collective
  checkpoints to a throw-away folder of that name: Workdir.for_worker)."""
  if is_chief(strategy):
    return ""
  resolver = strategy.cluster_resolver
  return f"{resolver.task_type}_{resolver.task_id}"


def _give_signals_back_to_python() -> None:
  """Creating MultiWorkerMirroredStrategy starts TensorFlow's coordination service, whose
  preemption notifier installs a C SIGTERM handler of its own in place of Python's: SIGTERM
  then did nothing at all (measured: a worker ran to its end after the signal), and only
  tf.distribute's PreemptionCheckpointHandler reads that notifier. Installing Python's handlers
  again gives the signals back to whatever the process set up (train.preemption.StopSignals,
  or the default: terminate)."""
  for signum in (signal.SIGTERM, signal.SIGINT):
    handler = signal.getsignal(signum)
    if handler is not None and threading.current_thread() is threading.main_thread():
      signal.signal(signum, handler)

