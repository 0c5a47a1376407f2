#!/usr/bin/env bash
# Creates .venv/ in the project root and installs the project with the frozen
# versions of constraints.txt. Idempotent: a second run only checks.
#   bash scripts/setup.sh          CPU TensorFlow (what CI and the demo use)
#   bash scripts/setup.sh --gpu    also TensorFlow's CUDA libraries (tensorflow[and-cuda] at the
#                                  pinned version; several GB), for NVIDIA GPUs on Linux
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=false
for argument in "$@"; do
  case "$argument" in
    --gpu) gpu=true ;;
    *) echo "setup.sh: unknown argument '$argument' (usage: bash scripts/setup.sh [--gpu])" >&2
       exit 2 ;;
  esac
done

# --- Python (issue 10): any version the pinned stack supports (scripts/find_python.sh) ----------
FROZEN_FOR=3.11            # the Python constraints.txt was resolved on
if [ ! -x .venv/bin/python ]; then
  PYTHON=$(bash scripts/find_python.sh)
  "$PYTHON" -m venv .venv
fi
if ! bash scripts/find_python.sh --check .venv/bin/python; then
  echo "setup.sh: .venv/ runs $(.venv/bin/python -V 2>&1); the stack needs Python 3.9-3.13:" \
       "remove .venv/ and run again" >&2
  exit 1
fi
version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "setup.sh: Python $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')" \
     "($(.venv/bin/python -c 'import sys; print(sys._base_executable)')) in .venv/"
constraints="-c constraints.txt"
if [ "$version" != "$FROZEN_FOR" ]; then
  # The frozen versions need Python $FROZEN_FOR (numpy 2.4 and scipy 1.17 need >= 3.11);
  # setup.py's pins (TF, tf-keras, tf-models-official, tensorflow-hub) hold everywhere.
  echo "setup.sh: constraints.txt is frozen for Python $FROZEN_FOR; installing setup.py's pins" \
       "and the newest versions of the rest that support Python $version"
  constraints=""
fi
stamp=.venv/.installed-$(cat setup.py constraints.txt | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q $constraints -e ".[test,jax]"   # jax: tf_frontends.keras3
  if [ -z "${PIP_DRY_RUN:-}" ]; then   # a dry run (tests/scripts/test_setup.py) installs nothing
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
fi
if [ "$gpu" = true ]; then
  # The same TensorFlow wheel with its CUDA / cuDNN libraries as pip packages; nothing else moves
  # (the constraints keep every other package where it is).
  tensorflow_pin=$(grep -o '"tensorflow==[0-9.]*"' setup.py | tr -d '"')
  gpu_stamp=.venv/.installed-gpu-${tensorflow_pin#tensorflow==}
  if [ ! -f "$gpu_stamp" ]; then
    .venv/bin/python -m pip install -q $constraints "${tensorflow_pin/tensorflow/tensorflow[and-cuda]}"
    [ -n "${PIP_DRY_RUN:-}" ] || touch "$gpu_stamp"     # PIP_DRY_RUN=1: what it would install
  fi
  .venv/bin/python -c 'import tensorflow as tf; print("setup.sh: GPUs:", tf.config.list_physical_devices("GPU") or "none found")'
fi
# --- end Python ---------------------------------------------------------------------------------

# --- demo data: Debian packages (issue 3; owned by train/data/demo/demo_data.py) -------------
# Real recordings and synthesizers the embedded demo set is built from. Skipped when installed.
demo_packages="sonic-pi-samples espeak-ng flite fluidsynth timgm6mb-soundfont fluid-soundfont-gm musescore-general-soundfont-small hydrogen-drumkits"
missing=""
for package in $demo_packages; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $package"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo -n"; else
    echo "setup.sh: install as root:  apt-get install$missing" >&2; exit 1; fi
  $sudo apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing </dev/null
fi
# --- end demo data packages ---------------------------------------------------------------------
