"""The trainer checks the data before it writes anything: the frontend's sample rate against the
data's, and every shard of the splits it reads (present, as long as data prep wrote it)."""
import json
import os
import shutil

import pytest

from tests.harness import tiny_config
from train import train_loop
from train.data import dataset_info


def test_a_frontend_at_another_rate_than_the_data_is_refused_before_writing(data_dir, tmp_path):
  config = tiny_config(data_dir)
  config.frontend.sample_rate = 8000
  config.frontend.max_freq = 3800.0
  with pytest.raises(dataset_info.DataError,
                     match=r"the frontend runs at 8000 Hz .* says the audio is 16000 Hz"):
    train_loop.train_and_evaluate(config, str(tmp_path / "run"), mode="train")
  assert not (tmp_path / "run" / "config.json").exists()
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_a_truncated_eval_shard_is_named_before_training_starts(data_dir, tmp_path):
  data = shutil.copytree(data_dir, tmp_path / "data")
  info = json.loads((data / "dataset_info.json").read_text())
  shard = data / info["splits"]["eval"]["files"][0]
  shard.write_bytes(shard.read_bytes()[:len(shard.read_bytes()) // 2])
  with pytest.raises(ValueError, match=rf"{shard.name}.*truncated"):
    train_loop.train_and_evaluate(tiny_config(str(data)), str(tmp_path / "run"))
  assert not (tmp_path / "run" / "checkpoints").exists()
