#!/usr/bin/env bash
# Creates .venv-mediapipe/ in the project root with MediaPipe Tasks (scripts/mediapipe_requirements.txt)
# for the tests that load our TFLite models in MediaPipe's AudioClassifier. A venv of its own:
# mediapipe needs absl-py >= 2.3 and tf-models-official holds absl-py at 1.x. Idempotent (~15 s
# the first time, then only a check); the tests call it themselves. Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-mediapipe
requirements=scripts/mediapipe_requirements.txt
if [ ! -x "$venv/bin/python" ]; then
  # The interpreter .venv was made from (scripts/setup.sh), else the first python3 on PATH.
  base=$( (.venv/bin/python -c 'import sys; print(sys._base_executable)' 2>/dev/null) || command -v python3)
  "$base" -m venv "$venv"
fi
stamp=$venv/.installed-$(sha1sum "$requirements" | cut -c1-12)
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
echo "$PWD/$venv/bin/python"
