r"""mel (40 filters) + EfficientNet-B0 on the embedded demo set: demo_leaf.py with another frontend.

Measured (2 shared CPU cores, 240 steps at ~4 steps/s, 2.5 min with its 2 evals): centre crop
mAP 0.433 / mAUC 0.706 / d' 0.77, full clip 0.490 / 0.737 / 0.90 (random scores: 0.227 / 0.490).

python -m train.main --config=train/configs/demo_mel.py --workdir=demo_out/demo_mel
"""
from train.configs import default
from train.configs import demo_leaf


def get_config():
  config = demo_leaf.get_config()
  config.frontend = default.frontend_config("mel", n_filters=config.frontend.n_filters)
  return config
