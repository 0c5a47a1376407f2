#!/usr/bin/env bash
# The main job on the embedded demo data (README, first command). Run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-demo_out}
mkdir -p "$OUT"
.venv/bin/python -m train.frontends_demo --output_dir="$OUT/frontends"

# The demo set (9 classes, 1920 train / 480 eval clips with strong labels; ~1.5 min), then LEAF + ResNet-18 (half width) on it
# (~10 min on 2 idle CPU cores; a rerun resumes from the last checkpoint), then an evaluation of
# the best checkpoint next to random scores.
if [ ! -f "$OUT/demo_data/dataset_info.json" ]; then
  .venv/bin/python -m train.data.demo.demo_data --output_dir="$OUT/demo_data"
fi
.venv/bin/python -m train.main --config=train/configs/demo.py:leaf --workdir="$OUT/demo_leaf" \
    --config.dataset.data_dir="$OUT/demo_data" --mode=train_and_eval
.venv/bin/python -m train.main --config=train/configs/demo.py:leaf --workdir="$OUT/demo_leaf" \
    --config.dataset.data_dir="$OUT/demo_data" --mode=eval

# --- export (issue 5): the demo model as TF-Hub modules and TFLite models, verified -------------
# Writes $OUT/export_leaf/{classifier,frontend,tflite,verification.json,README.md} (~2-4 min).
.venv/bin/python -m export.main --workdir="$OUT/demo_leaf" --output_dir="$OUT/export_leaf" \
    --overwrite
echo "TF-Hub modules: $OUT/export_leaf/classifier (classifier) and $OUT/export_leaf/frontend" \
     "(frontend); TFLite: $OUT/export_leaf/tflite/ (MediaPipe AudioClassifier:" \
     "mediapipe_float32.tflite, mediapipe_int8.tflite); model card: $OUT/export_leaf/README.md"
# --- end export ------------------------------------------------------------------------------------
