r"""mel (40 filters) + EfficientNet-B0 on the embedded demo set: demo_leaf.py with another frontend.

python -m train.main --config=train/configs/demo_mel.py --workdir=demo_out/demo_mel
"""
from train.configs import demo_leaf


def get_config():
  config = demo_leaf.get_config()
  config.frontend.name = "mel"
  return config
