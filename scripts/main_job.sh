#!/usr/bin/env bash
# The main job on the embedded demo data (README, first command). Run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-demo_out}
mkdir -p "$OUT"
.venv/bin/python -m train.frontends_demo --output_dir="$OUT/frontends"

# The demo set (9 classes, 3840 train / 960 eval clips with strong labels; ~2 min), then LEAF +
# ResNet-18 (half width) on it (--mode=train: no evaluation while training, so the time goes to
# training steps; a rerun resumes from the last checkpoint), then one evaluation of the trained
# model next to random scores.
if [ ! -f "$OUT/demo_data/dataset_info.json" ]; then
  .venv/bin/python -m train.data.demo.demo_data --output_dir="$OUT/demo_data"
fi
.venv/bin/python -m train.main --config=train/configs/demo.py:leaf --workdir="$OUT/demo_leaf" \
    --config.dataset.data_dir="$OUT/demo_data" --mode=train
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
