r"""EfficientLEAF (40 filters, LogTBN) + EfficientNet-B0 on the embedded demo set.

demo_leaf.py with the fast, approximate LEAF (`tf_frontends.EfficientLeaf`). Not yet run to the
end on the demo set: see benchmarks/frontend_quality.py for the side-by-side comparison.

python -m train.main --config=train/configs/demo_efficientleaf.py --workdir=demo_out/demo_efficientleaf
"""
from train.configs import default
from train.configs import demo_leaf


def get_config():
  config = demo_leaf.get_config()
  config.frontend = default.frontend_config("efficientleaf", n_filters=config.frontend.n_filters)
  return config
