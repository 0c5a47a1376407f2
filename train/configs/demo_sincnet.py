r"""sincnet (40 filters) + EfficientNet-B0 on the embedded demo set: demo_leaf.py with another frontend.

python -m train.main --config=train/configs/demo_sincnet.py --workdir=demo_out/demo_sincnet
"""
from train.configs import default
from train.configs import demo_leaf


def get_config():
  config = demo_leaf.get_config()
  config.frontend = default.frontend_config("sincnet", n_filters=config.frontend.n_filters)
  return config
