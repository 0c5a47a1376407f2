"""Metrics: per-class average precision and ROC-AUC, their means and d' (multi-label, AudioSet);
plus top-1 accuracy for single-label (multiclass) runs.

    audioset_metrics(y_true [N, C] in {0, 1}, y_score [N, C]) ->
      {"mAP", "mAUC", "dprime", "num_classes_evaluated", "num_classes_excluded",
       "excluded_classes", "per_class_ap", "per_class_auc"}
    multiclass_metrics(y_true [N, C] one-hot, y_score [N, C]) ->
      the same + {"accuracy", "num_correct", "per_class_accuracy"}

A class with no positive or no negative example has no AP / AUC; it is excluded
from the means and counted (its entries in the per-class lists are None).
d' = sqrt(2) * Phi^-1(mAUC). AP and AUC are scikit-learn's (ties handled its way).
"""
import math

import numpy as np
from scipy import stats
from sklearn import metrics as sk_metrics


def dprime(auc: float) -> float:
  """d' of an equal-variance Gaussian model with this ROC-AUC."""
  return float(math.sqrt(2.0) * stats.norm.ppf(auc))


def audioset_metrics(y_true, y_score) -> dict:
  y_true = np.asarray(y_true)
  y_score = np.asarray(y_score, dtype=np.float64)
  if y_true.ndim != 2 or y_true.shape != y_score.shape:
    raise ValueError("y_true and y_score must both be [examples, classes]; got "
                     f"{y_true.shape} and {y_score.shape}")
  if not np.all(np.isfinite(y_score)):
    raise ValueError("y_score contains NaN or inf")
  y_true = (y_true > 0.5).astype(np.int64)
  num_positive = y_true.sum(axis=0)
  evaluable = (num_positive > 0) & (num_positive < y_true.shape[0])
  per_class_ap, per_class_auc = [], []
  for c in range(y_true.shape[1]):
    if evaluable[c]:
      per_class_ap.append(float(sk_metrics.average_precision_score(y_true[:, c], y_score[:, c])))
      per_class_auc.append(float(sk_metrics.roc_auc_score(y_true[:, c], y_score[:, c])))
    else:
      per_class_ap.append(None)
      per_class_auc.append(None)
  if evaluable.any():
    mean_ap = float(np.mean([a for a in per_class_ap if a is not None]))
    mean_auc = float(np.mean([a for a in per_class_auc if a is not None]))
    d = dprime(mean_auc)
  else:
    mean_ap = mean_auc = d = float("nan")
  return {"mAP": mean_ap, "mAUC": mean_auc, "dprime": d,
          "num_classes_evaluated": int(evaluable.sum()),
          "num_classes_excluded": int((~evaluable).sum()),
          "excluded_classes": [int(c) for c in np.flatnonzero(~evaluable)],
          "per_class_ap": per_class_ap, "per_class_auc": per_class_auc}


# The metric that chooses the best checkpoint, by config.model.type (higher is better).
SELECTION_METRIC = {"multilabel": "mAP", "multiclass": "accuracy"}


def multiclass_metrics(y_true, y_score) -> dict:
  """Single-label metrics: audioset_metrics plus top-1 accuracy and per-class accuracy.

      y_true [N, C]: one-hot (exactly one label per clip); y_score [N, C] (softmax or logits)
      -> audioset_metrics' keys + {"accuracy", "per_class_accuracy", "num_correct"}

  A clip counts as correct when its highest score is at its label (ties: the lowest class
  index, numpy's argmax). per_class_accuracy[c] is the fraction of clips labelled c that are
  correct (recall of c); None for a class without clips.
  """
  y_true = np.asarray(y_true)
  y_score = np.asarray(y_score, dtype=np.float64)
  result = audioset_metrics(y_true, y_score)          # shapes and finiteness checked there
  num_labels = (y_true > 0.5).sum(axis=1)
  bad = np.flatnonzero(num_labels != 1)
  if bad.size:
    raise ValueError(f"multiclass metrics need exactly one label per clip: clip {bad[0]} (of "
                     f"{bad.size} such) has {num_labels[bad[0]]}")
  label = np.argmax(y_true, axis=1)
  correct = np.argmax(y_score, axis=1) == label
  per_class = []
  for c in range(y_true.shape[1]):
    of_class = label == c
    per_class.append(float(correct[of_class].mean()) if of_class.any() else None)
  return {**result, "accuracy": float(correct.mean()), "num_correct": int(correct.sum()),
          "per_class_accuracy": per_class}
