#!/usr/bin/env bash
# tf_frontends.keras3 on Keras 3's PyTorch backend: installs PyTorch next to the project's
# .venv/ (into .venv-torch/site-packages, git-ignored; .venv/ itself is not touched) and runs
# tests/keras3 with the torch backend collected. Not part of scripts/setup.sh: the registry's
# torch wheel brings several GB of CUDA libraries as dependencies.
#   bash scripts/setup.sh && bash scripts/test_keras3_torch.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  echo "test_keras3_torch.sh: no .venv/; run bash scripts/setup.sh first" >&2
  exit 1
fi
site=.venv-torch/site-packages
torch_pin=$(grep -i '^torch==' constraints.txt)
stamp=$site/.installed-${torch_pin#torch==}
if [ ! -f "$stamp" ]; then
  rm -rf "$site"
  .venv/bin/python -m pip install -q --target "$site" -c constraints.txt "$torch_pin"
  touch "$stamp"
fi
export PYTHONPATH="$PWD/$site${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -c 'import torch; print("test_keras3_torch.sh: torch", torch.__version__)'
.venv/bin/python -m pytest tests/keras3 -k torch "$@"
