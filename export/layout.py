"""The names of every file in an export folder; export, the hub modules and TFLite ask here.

    OUT/classifier/                  reusable SavedModel (TF-Hub), assets/class_names.csv
    OUT/frontend/                    reusable SavedModel of the frontend alone
    OUT/tflite/model_<q>.tflite      classifier, signature "classify" (q: float32,
                                     dynamic_range, int8)
    OUT/tflite/mediapipe_<q>.tflite  MediaPipe AudioClassifier models (scores only)
    OUT/class_names.csv              index,id,display_name
    OUT/verification.json            the parity and smoke-test report
    OUT/README.md                    the model card
    OUT/.tf_frontends_export.json    the marker: what export wrote (export/output_dir.py)

    layout = ExportLayout(folder)    the paths of an export folder (or of its staging folder)
"""
import os

MARKER = ".tf_frontends_export.json"
# Temporary folders beside OUT (staging, the replaced export) start with this.
TMP_PREFIX = ".tf_frontends_export."
CLASS_NAMES = "class_names.csv"     # also the classifier module's asset
# export.tflite's conversion folder inside the staging folder (removed with it).
TFLITE_SCRATCH_PREFIX = "tflite_signature_"
_CLASSIFIER = "classifier"
_FRONTEND = "frontend"
_TFLITE = "tflite"
_VERIFICATION = "verification.json"
_MODEL_CARD = "README.md"
_TFLITE_NAMES = {"float": "float32", "dynamic_range": "dynamic_range", "int8": "int8"}
# What export wrote before it wrote a marker: an earlier export is recognised by these.
UNMARKED_ENTRIES = frozenset({_CLASSIFIER, _FRONTEND, _TFLITE, CLASS_NAMES, _VERIFICATION,
                              _MODEL_CARD})


class ExportLayout:
  """Paths of the files of the export folder at `root` (see the module doc)."""

  def __init__(self, root: str):
    self.root = root

  def _path(self, *names) -> str:
    return os.path.join(self.root, *names)

  @property
  def classifier(self) -> str:
    return self._path(_CLASSIFIER)

  @property
  def frontend(self) -> str:
    return self._path(_FRONTEND)

  @property
  def tflite_dir(self) -> str:
    return self._path(_TFLITE)

  def tflite(self, quantization: str) -> str:
    """The classifier's TFLite model ("float", "dynamic_range" or "int8")."""
    return self._path(_TFLITE, f"model_{_TFLITE_NAMES[quantization]}.tflite")

  def task_model(self, quantization: str) -> str:
    """The MediaPipe AudioClassifier model of a quantization."""
    return self._path(_TFLITE, f"mediapipe_{_TFLITE_NAMES[quantization]}.tflite")

  @property
  def class_names(self) -> str:
    return self._path(CLASS_NAMES)

  @property
  def verification(self) -> str:
    return self._path(_VERIFICATION)

  @property
  def model_card(self) -> str:
    return self._path(_MODEL_CARD)

  @property
  def marker(self) -> str:
    return self._path(MARKER)

  def relative(self, path: str) -> str:
    """A path of this layout as named inside the folder (tflite/model_float32.tflite)."""
    return os.path.relpath(path, self.root)
