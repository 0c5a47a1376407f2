"""benchmarks/accelerator.py runs on CPU with tiny arguments and prints every row it promises;
its defaults are the issue's benchmark (batch 256 x 5 s, four frontends, three precisions)."""
import re

import tensorflow as tf

from benchmarks import accelerator

TINY = ["--batch", "2", "--seconds", "0.2", "--steps", "1", "--repeats", "1",
        "--backbone", "resnet", "--frontends", "mel",
        "--precisions", "float32,bfloat16",
        "--overrides", "model.resnet.model_id=10,model.resnet.depth_multiplier=0.25"]


def test_defaults_are_the_accelerator_benchmark():
  args = accelerator._parse([])    # pylint: disable=protected-access
  assert (args.batch, args.seconds, args.backbone, args.tf32) == (256, 5.0, "efficientnet", False)
  assert sorted(args.frontends) == ["efficientleaf", "leaf", "mel", "sincnet"]
  assert args.precisions == ["float32", "bfloat16", "float16"]


def test_tiny_run_prints_every_row(capsys):
  tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
  accelerator.main(TINY)
  assert tf.config.experimental.tensor_float_32_execution_enabled() == tf32   # restored
  out = capsys.readouterr().out
  assert re.match(r"(CPU|GPU): .+; TF \S+; TF32 off", out.splitlines()[0])
  rows = re.findall(r"^(frontend fwd\+grad|train step \+ resnet)\s+(\S+)\s+(\S+)\s+(on|off)\s+"
                    r"([0-9.]+)$", out, flags=re.M)
  keys = [row[:4] for row in rows]
  expected = [("frontend fwd+grad", name, "float32", jit)
              for name in ("mel",) for jit in ("off", "on")]
  expected += [("train step + resnet", name, precision, jit) for name in ("mel",)
               for precision in ("float32", "bfloat16") for jit in ("off", "on")]
  assert keys == expected, out
  assert all(float(row[4]) > 0 for row in rows)
