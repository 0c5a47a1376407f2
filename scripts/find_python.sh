#!/usr/bin/env bash
# Prints the Python interpreter scripts/setup.sh makes .venv/ from: $PYTHON if set, else the first
# of SUPPORTED_PYTHONS on PATH that runs (a pyenv shim without that version installed does not)
# and is a version the pinned stack supports. Exit status 1, saying why, if there is none.
#
# The pinned stack (TF 2.20, tf-models-official 2.20 with tensorflow-text 2.20.x, tf-keras 2.20,
# ai-edge-litert) has wheels for Python 3.9-3.13. 3.11 comes first: CI runs on it and
# constraints.txt (the frozen versions) was resolved on it.
#   bash scripts/find_python.sh            -> e.g. python3.11
#   bash scripts/find_python.sh --check X  -> exit status 0 if interpreter X is supported
set -euo pipefail
SUPPORTED_PYTHONS="3.11 3.12 3.13 3.10 3.9"

supported() {
  "$1" -c 'import sys, venv; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 13)))' \
      >/dev/null 2>&1
}

if [ "${1:-}" = "--check" ]; then
  supported "$2"
  exit
fi
candidates=${PYTHON:-$(for v in $SUPPORTED_PYTHONS; do printf 'python%s ' "$v"; done)python3}
for candidate in $candidates; do
  if supported "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done
echo "find_python.sh: no supported Python (3.9-3.13) among: $candidates; install one or set" \
     "PYTHON=/path/to/python3.X" >&2
exit 1
