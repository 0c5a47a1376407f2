"""google-research/leaf-audio's own modules, imported from a checkout, as the speed reference.

    git clone https://github.com/google-research/leaf-audio /path/to/leaf-audio
    .venv/bin/python benchmarks/frontends.py --leaf_audio_dir=/path/to/leaf-audio

leaf-audio imports gin (configuration), tensorflow-addons (InstanceNormalization, only for
its `mean_var_norm` option) and lingvo (SpecAugment, only in `postprocessing.SpecAugment`);
none of them installs on a current TensorFlow, and none of them computes anything in the
frontends timed here. So they are replaced by stand-ins that do nothing (gin's decorators
return what they decorate) or refuse (the two layers we never build); leaf-audio's own
modules run unchanged. Its layers subclass `tf.keras` layers, which an entry point that
imported `legacy_keras` first resolves to tf_keras.
"""
import importlib
import os
import sys
import types


def _gin_configurable(*args, **kwargs):
  """gin.configurable, bare (@gin.configurable) or called (@gin.configurable("name"))."""
  if len(args) == 1 and callable(args[0]) and not kwargs:
    return args[0]
  return lambda decorated: decorated


class _Unavailable:
  """A layer leaf-audio only builds for options the benchmark never sets."""

  def __init__(self, name):
    self._name = name

  def __call__(self, *args, **kwargs):
    raise NotImplementedError(f"{self._name} is a stand-in in benchmarks/leaf_audio_reference.py")


def _stand_in_modules():
  gin = types.ModuleType("gin")
  gin.configurable = _gin_configurable
  gin.external_configurable = lambda value, *args, **kwargs: value
  gin.constants_from_enum = _gin_configurable
  addons = types.ModuleType("tensorflow_addons")
  addons.layers = types.SimpleNamespace(
      InstanceNormalization=_Unavailable("tensorflow_addons.layers.InstanceNormalization"))
  lingvo, core = types.ModuleType("lingvo"), types.ModuleType("lingvo.core")
  augmenter = types.ModuleType("lingvo.core.spectrum_augmenter")
  augmenter.SpectrumAugmenter = _Unavailable("lingvo's SpectrumAugmenter")
  lingvo.core, core.spectrum_augmenter = core, augmenter
  return {"gin": gin, "tensorflow_addons": addons, "lingvo": lingvo, "lingvo.core": core,
          "lingvo.core.spectrum_augmenter": augmenter}


def load(leaf_audio_dir: str) -> types.SimpleNamespace:
  """leaf-audio's modules (frontend, convolution, pooling, postprocessing) from a checkout."""
  package_dir = os.path.join(leaf_audio_dir, "leaf_audio")
  if not os.path.isfile(os.path.join(package_dir, "frontend.py")):
    raise SystemExit(f"--leaf_audio_dir={leaf_audio_dir}: no leaf_audio/frontend.py there "
                     "(give the root of a google-research/leaf-audio checkout)")
  for name, module in _stand_in_modules().items():
    sys.modules.setdefault(name, module)
  sys.path.insert(0, os.path.abspath(leaf_audio_dir))
  try:
    return types.SimpleNamespace(**{
        name: importlib.import_module(f"leaf_audio.{name}")
        for name in ("frontend", "convolution", "pooling", "postprocessing")})
  finally:
    sys.path.pop(0)
