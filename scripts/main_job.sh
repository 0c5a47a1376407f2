#!/usr/bin/env bash
# The main job on the embedded demo data (README, first command). Run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-demo_out}
mkdir -p "$OUT"
.venv/bin/python -m tf_frontends.demo --output_dir="$OUT/frontends"
