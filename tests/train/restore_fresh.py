"""Helper of test_trainer.py: restores a workdir's best model in a fresh process and saves its
logits for given waveforms.

python tests/train/restore_fresh.py WORKDIR WAVEFORMS.npy OUT.npy
"""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from train import checkpoints  # noqa: E402


def main(workdir, waveforms_path, out_path):
  model, config = checkpoints.restore_model(workdir, "best")
  outputs = model.compute_outputs(np.load(waveforms_path))
  assert config.dataset.crop_seconds == 0.5 and model.multi_label
  np.save(out_path, outputs["logits"].numpy())
  print({name: tuple(value.shape) for name, value in outputs.items()})


if __name__ == "__main__":
  main(*sys.argv[1:])
