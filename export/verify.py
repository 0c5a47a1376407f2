"""Checks that exported models compute what the Keras model computes.

  smoke_test(fn, num_samples)      silence, white noise, a 440 Hz sine -> finite scores [1, C]
  compare_outputs(reference, other) max abs difference per output
  quantised_agreement(ref, other)  top-1 / top-5 agreement of score rankings
  verify(...)                      the whole report written to verification.json

Reference = the restored Keras model; candidates = the reloaded SavedModel (its
`__call__` and its serving signature) and each TFLite model run with LiteRT on
the same real eval clips, cropped to the TFLite input length.
"""
import os
import time
from typing import Callable, Dict

import numpy as np

from train import metrics

FLOAT_TFLITE_GOAL = 1e-4       # max abs difference of scores and logits


def smoke_signals(num_samples: int, sample_rate: int = 16000) -> dict:
  """[1, num_samples] float32 test signals in [-1, 1]."""
  rng = np.random.default_rng(0)
  t = np.arange(num_samples) / sample_rate
  return {
      "silence": np.zeros([1, num_samples], np.float32),
      "white_noise": np.clip(0.3 * rng.standard_normal([1, num_samples]), -1, 1).astype(np.float32),
      "sine_440hz": (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[np.newaxis],
  }


def smoke_test(fn: Callable, num_samples: int, num_classes: int, *,
               sample_rate: int = 16000, name: str = "model") -> dict:
  """fn(waveform [1, T]) -> {"scores", ...}; raises unless every signal gives finite [1, C] scores."""
  report = {}
  for signal, waveform in smoke_signals(num_samples, sample_rate).items():
    scores = np.asarray(fn(waveform)["scores"])
    ok = scores.shape == (1, num_classes) and bool(np.all(np.isfinite(scores)))
    report[signal] = {"shape": list(scores.shape), "finite": bool(np.all(np.isfinite(scores))),
                      "ok": ok}
    if not ok:
      raise RuntimeError(f"Smoke test of {name} failed on {signal}: scores of shape "
                         f"{scores.shape} (want (1, {num_classes})), finite="
                         f"{report[signal]['finite']}.")
  return report


def compare_outputs(reference: Dict[str, np.ndarray], other: Dict[str, np.ndarray]) -> dict:
  """{key: max abs difference} over the keys both have."""
  return {k: float(np.max(np.abs(np.asarray(reference[k], np.float64) -
                                 np.asarray(other[k], np.float64))))
          for k in reference if k in other}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
  return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


def quantised_agreement(reference_scores: np.ndarray, scores: np.ndarray, k: int = 5) -> dict:
  """Top-1 agreement, and mean overlap of the top-k sets (k capped at the class count)."""
  k = min(k, reference_scores.shape[-1])
  ref_top, top = top_k(reference_scores, k), top_k(scores, k)
  overlap = [len(set(a) & set(b)) / k for a, b in zip(ref_top, top)]
  return {"top1_agreement": float(np.mean(ref_top[:, 0] == top[:, 0])),
          f"top{k}_overlap": float(np.mean(overlap)),
          f"top{k}_same_set": float(np.mean([o == 1.0 for o in overlap]))}


def mean_average_precision(labels, scores: np.ndarray):
  """mAP, or None without labels (clips synthesised because the data folder is gone)."""
  if labels is None:
    return None
  return metrics.audioset_metrics(labels, scores)["mAP"]


def format_map(value, change=None) -> str:
  """'0.4321 (+0.0012)', or 'n/a' when the clips had no labels."""
  if value is None:
    return "n/a"
  return f"{value:.4f}" + (f" ({change:+.4f})" if change is not None else "")


def directory_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f))
             for root, _, files in os.walk(path) for f in files)


def batched(fn: Callable, waveforms: np.ndarray, batch_size: int = 16) -> dict:
  """Concatenated outputs of fn over batches of waveforms [N, T]."""
  parts = [fn(waveforms[i:i + batch_size]) for i in range(0, len(waveforms), batch_size)]
  return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def verify(*, keras_fn: Callable, savedmodel_fns: Dict[str, Callable],
           tflite_runners: Dict[str, object], waveforms: np.ndarray, labels: np.ndarray,
           sizes: Dict[str, int], num_classes: int, sample_rate: int = 16000,
           latency_repeats: int = 10) -> dict:
  """The verification report.

  keras_fn / savedmodel_fns[name]: waveform [B, T] -> dict of numpy-able outputs.
  tflite_runners[quantization]: export.tflite.TFLiteRunner on clips of length T.
  waveforms [N, T] eval clips at the TFLite length; labels [N, C] multi-hot, or None
  (synthetic clips: no mAP).
  """
  start = time.time()
  reference = batched(keras_fn, waveforms)
  reference_map = mean_average_precision(labels, reference["scores"])
  report = {"num_clips": int(len(waveforms)), "clip_samples": int(waveforms.shape[1]),
            "reference": "restored Keras model",
            "keras_mAP": reference_map, "sizes_bytes": dict(sizes),
            "float_tflite_goal_max_abs_diff": FLOAT_TFLITE_GOAL,
            "savedmodel": {}, "tflite": {}, "smoke_tests": {}}

  num_samples = waveforms.shape[1]
  report["smoke_tests"]["keras"] = smoke_test(keras_fn, num_samples, num_classes,
                                              sample_rate=sample_rate, name="Keras model")
  for name, fn in savedmodel_fns.items():
    outputs = batched(fn, waveforms)
    report["savedmodel"][name] = {"max_abs_diff": compare_outputs(reference, outputs)}
    report["smoke_tests"][f"savedmodel_{name}"] = smoke_test(
        fn, num_samples, num_classes, sample_rate=sample_rate, name=f"SavedModel {name}")

  for quantization, runner in tflite_runners.items():
    outputs = [runner(w) for w in waveforms]
    outputs = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    entry = {"max_abs_diff": compare_outputs(reference, outputs),
             "mAP": mean_average_precision(labels, outputs["scores"]),
             "latency_ms_per_clip": runner.latency_ms(waveforms[0], latency_repeats),
             "ops": runner.op_names()}
    if quantization != "float":
      entry["ops_running_in_float"] = runner.float_op_names()
    entry["mAP_change"] = None if labels is None else entry["mAP"] - reference_map
    entry.update(quantised_agreement(reference["scores"], outputs["scores"]))
    entry["builtin_ops_only"] = not any(op.lower().startswith("flex") for op in entry["ops"])
    if quantization == "float":
      worst = max(entry["max_abs_diff"]["scores"], entry["max_abs_diff"]["logits"])
      entry["within_goal"] = bool(worst <= FLOAT_TFLITE_GOAL)
    report["tflite"][quantization] = entry
    report["smoke_tests"][f"tflite_{quantization}"] = smoke_test(
        lambda w, r=runner: r(w), num_samples, num_classes, sample_rate=sample_rate,
        name=f"TFLite {quantization}")
  report["seconds"] = round(time.time() - start, 1)
  return report


def task_model_parity(runners: Dict[str, object], task_runners: Dict[str, object],
                      waveforms: np.ndarray) -> dict:
  """{quantization: {"max_abs_diff_scores", "outputs"}}: each MediaPipe task model
  (scores only) against the "classify" model it was cut from, on the same clips."""
  report = {}
  for q, task in task_runners.items():
    diff = max(float(np.max(np.abs(task(w)["scores"] - runners[q](w)["scores"])))
               for w in waveforms)
    report[q] = {"max_abs_diff_scores": diff, "outputs": sorted(task(waveforms[0]))}
  return report


def summary_lines(report: dict) -> list:
  """Human-readable lines of a verification report (printed by the binary)."""
  lines = [f"verification on {report['num_clips']} eval clips of {report['clip_samples']} samples; "
           f"Keras mAP {format_map(report['keras_mAP'])}"]
  for name, entry in report["savedmodel"].items():
    diffs = ", ".join(f"{k} {v:.2e}" for k, v in entry["max_abs_diff"].items())
    lines.append(f"  SavedModel {name:16s} max |diff|: {diffs}")
  for q, entry in report["tflite"].items():
    d = entry["max_abs_diff"]
    top = next(k for k in entry if k.endswith("_overlap"))
    line = (f"  TFLite {q:14s} max |diff| scores {d['scores']:.2e} logits {d['logits']:.2e}; "
            f"top-1 agree {entry['top1_agreement']:.3f}, {top} {entry[top]:.3f}; "
            f"mAP {format_map(entry['mAP'], entry['mAP_change'])}; "
            f"{entry['latency_ms_per_clip']:.1f} ms/clip; "
            f"{report['sizes_bytes'].get('tflite_' + q, 0) / 1e6:.2f} MB")
    if "within_goal" in entry:
      line += "  [within 1e-4 goal]" if entry["within_goal"] else "  [OUTSIDE the 1e-4 goal]"
    lines.append(line)
  for q, entry in report.get("mediapipe_task_models", {}).items():
    lines.append(f"  MediaPipe task model {q:14s} max |diff| scores vs the classify model "
                 f"{entry['max_abs_diff_scores']:.1e}")
  return lines
