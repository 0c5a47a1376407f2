r"""tf_frontends' demo as a binary with the quiet console of the others.

    python -m train.frontends_demo --output_dir=demo_out/frontends [--wav=clip.wav] [--verbose]

(`python -m tf_frontends.demo` runs the same, but imports TensorFlow before any
entry point could set its log level: the library has no import side effects.)
"""
from train import console  # first: TensorFlow's C++ log level

from tf_frontends import demo  # noqa: E402


def run():
  """Console-script entry point (tf-frontends-demo)."""
  console.define_verbose_flag()
  demo.run()


if __name__ == "__main__":
  run()
