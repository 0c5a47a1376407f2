#!/usr/bin/env bash
# Creates .venv/ in the project root and installs the project with the frozen
# versions of constraints.txt. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat setup.py constraints.txt | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# --- demo data: Debian packages (issue 3; owned by train/demo_data.py) -------------------------
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
