r"""mel (40 filters) + EfficientNet-B0 on the embedded demo set: demo_leaf.py with another frontend.

Measured on the strongly labelled demo set (2 shared CPU cores, 480 steps at ~3 steps/s): centre
crop mAP 0.444 / mAUC 0.729 / d' 0.86, full clip 0.445 / 0.740 / 0.91.

python -m train.main --config=train/configs/demo_mel.py --workdir=demo_out/demo_mel
"""
from train.configs import default
from train.configs import demo_leaf


def get_config():
  config = demo_leaf.get_config()
  config.frontend = default.frontend_config("mel", n_filters=config.frontend.n_filters)
  return config
