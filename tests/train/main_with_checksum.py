"""python tests/train/main_with_checksum.py ARGS: train.main ARGS, then the sum of |w| over the
trainable variables of the model it built, as "param_checksum X" (every worker of a
multi-worker run prints its own: a non-chief's checkpoints are removed at its end)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import legacy_keras  # noqa: E402,F401  (before TF)

import numpy as np  # noqa: E402

from train import main  # noqa: E402
from train import models  # noqa: E402

built = []
build_model = models.build_model


def _capture(*args, **kwargs):
  built.append(build_model(*args, **kwargs))
  return built[-1]


models.build_model = _capture
try:
  main.run()
finally:
  if built:
    print("param_checksum %r" % float(sum(np.sum(np.abs(v.numpy().astype(np.float64)))
                                          for v in built[-1].trainable_variables)), flush=True)
