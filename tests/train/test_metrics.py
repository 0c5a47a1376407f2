"""train.metrics.audioset_metrics against scikit-learn, with the edge cases of DESIGN.md."""
import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk_metrics

from train import metrics


def _reference(y_true, y_score):
  aps, aucs = [], []
  for c in range(y_true.shape[1]):
    if 0 < y_true[:, c].sum() < len(y_true):
      aps.append(sk_metrics.average_precision_score(y_true[:, c], y_score[:, c]))
      aucs.append(sk_metrics.roc_auc_score(y_true[:, c], y_score[:, c]))
  return np.mean(aps), np.mean(aucs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_data_matches_sklearn(seed):
  rng = np.random.default_rng(seed)
  y_true = (rng.random((200, 12)) < 0.2).astype(np.int64)
  y_score = rng.random((200, 12)) + 0.5 * y_true     # informative, so AUC > 0.5
  result = metrics.audioset_metrics(y_true, y_score)
  ref_ap, ref_auc = _reference(y_true, y_score)
  assert result["mAP"] == pytest.approx(ref_ap, abs=1e-12)
  assert result["mAUC"] == pytest.approx(ref_auc, abs=1e-12)
  assert result["dprime"] == pytest.approx(math.sqrt(2) * stats.norm.ppf(ref_auc), abs=1e-12)
  assert result["num_classes_evaluated"] == 12 and result["num_classes_excluded"] == 0
  # macro average of sklearn over all-evaluable classes is the same number
  assert result["mAP"] == pytest.approx(
      sk_metrics.average_precision_score(y_true, y_score, average="macro"), abs=1e-12)


def test_classes_without_positives_or_negatives_are_excluded_and_counted():
  rng = np.random.default_rng(3)
  y_true = (rng.random((50, 5)) < 0.3).astype(np.int64)
  y_true[:, 1] = 0            # no positive
  y_true[:, 3] = 1            # no negative
  y_score = rng.random((50, 5))
  result = metrics.audioset_metrics(y_true, y_score)
  keep = [0, 2, 4]
  ref_ap, ref_auc = _reference(y_true[:, keep], y_score[:, keep])
  assert result["mAP"] == pytest.approx(ref_ap, abs=1e-12)
  assert result["mAUC"] == pytest.approx(ref_auc, abs=1e-12)
  assert result["num_classes_evaluated"] == 3
  assert result["num_classes_excluded"] == 2
  assert result["excluded_classes"] == [1, 3]
  assert result["per_class_ap"][1] is None and result["per_class_auc"][3] is None


def test_ties_match_sklearn():
  y_true = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])
  y_score = np.array([[0.5, 0.2], [0.5, 0.2], [0.5, 0.9], [0.1, 0.2], [0.9, 0.2], [0.1, 0.9]])
  result = metrics.audioset_metrics(y_true, y_score)
  ref_ap, ref_auc = _reference(y_true, y_score)
  assert result["mAP"] == pytest.approx(ref_ap, abs=1e-12)
  assert result["mAUC"] == pytest.approx(ref_auc, abs=1e-12)
  # all scores tied: AUC exactly 0.5, d' exactly 0
  flat = metrics.audioset_metrics(y_true, np.zeros_like(y_score, dtype=float))
  assert flat["mAUC"] == 0.5 and flat["dprime"] == 0.0


def test_perfect_and_inverted_scores():
  y_true = np.eye(4, dtype=np.int64)[[0, 1, 2, 3, 0, 1, 2, 3]]
  perfect = metrics.audioset_metrics(y_true, y_true * 0.8 + 0.1)
  assert perfect["mAP"] == 1.0 and perfect["mAUC"] == 1.0
  inverted = metrics.audioset_metrics(y_true, 1.0 - y_true)
  assert inverted["mAUC"] == 0.0 and inverted["dprime"] < 0


def test_nothing_evaluable_gives_nan_and_counts():
  result = metrics.audioset_metrics(np.zeros((4, 3)), np.ones((4, 3)))
  assert math.isnan(result["mAP"]) and result["num_classes_excluded"] == 3


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match="y_true and y_score"):
    metrics.audioset_metrics(np.zeros((4, 3)), np.zeros((4, 2)))
  with pytest.raises(ValueError, match="NaN"):
    metrics.audioset_metrics(np.ones((2, 1)) * [[1], [0]], np.array([[np.nan], [0.0]]))
