"""python -m export.main end to end on a tiny workdir, run as a user would (a fresh process)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from ai_edge_litert import interpreter as litert

from export import layout
from export import main as export_main
from export import tflite
from tests.hub_modules.test_classifier_module import tiny_config
from train.data.demo import demo_data
from train.data import dataset_info, input_pipeline
from train import checkpoints, evaluation, models
from train import optimizer as optimizer_lib
from train import fingerprint
from train import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CROP_SECONDS = 1.0


def run_export(*args, timeout=600):
  return subprocess.run([sys.executable, "-m", "export.main", *args], capture_output=True,
                        text=True, timeout=timeout, cwd=ROOT)


def make_workdir(workdir, data_dir, *, with_checkpoint=True):
  """A workdir laid out as train.train_loop writes one: config.json, checkpoints/, best/,
  eval_results.json. The model is untrained; its head is rescaled so that scores
  depend on the clip and spread out (an untrained head gives ~0.5 everywhere, and
  agreement of quantised models with ties would mean nothing)."""
  config = tiny_config()
  info = dataset_info.read(str(data_dir))
  config.model.num_classes = len(info["classes"])     # as the trainer resolves it
  config.dataset.data_dir = str(data_dir)
  config.dataset.eval_split = "test"
  config.dataset.crop_seconds = CROP_SECONDS
  config.dataset.full_clip_eval = False
  config.eval_batch_size = 8
  os.makedirs(workdir)
  tf_keras.utils.set_random_seed(0)
  model = models.build_model(config)
  workdir_lib.Workdir(workdir).describe(
      config, classes=info["classes"], sample_rate=info["sample_rate"],
      crop_seconds=CROP_SECONDS, multi_label=True,
      model_fingerprint=fingerprint.model_fingerprint(model))
  if not with_checkpoint:
    return
  batch = next(iter(input_pipeline.make_dataset(
      str(data_dir), config.dataset.eval_split, batch_size=8, crop_seconds=CROP_SECONDS,
      mode="eval")))
  embedding = model.compute_outputs(batch["audio"])["embedding"].numpy()
  spread = np.maximum(embedding.std(axis=0), 1e-12)
  kernel = np.random.default_rng(0).standard_normal(model.head.kernel.shape)
  model.head.kernel.assign((3.0 * kernel / (spread[:, None] * np.sqrt(len(spread)))
                            ).astype(np.float32))
  model.head.bias.assign(-(embedding.mean(axis=0) @ model.head.kernel.numpy()))
  optimizer, _ = optimizer_lib.create_optimizer(config, model, 1, 1)
  step = tf.Variable(1, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  tf.train.CheckpointManager(checkpoint, os.path.join(workdir, "checkpoints"), 1).save(1)
  tf.train.CheckpointManager(checkpoint, os.path.join(workdir, "best"), 1).save(1)
  results = evaluation.evaluate(model, config)
  results["step"] = 1
  with open(os.path.join(workdir, "eval_results.json"), "w") as f:
    json.dump(results, f, default=float)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("export_data") / "demo"
  demo_data.build(str(path), num_clips=24, test_fraction=0.35, quiet=True)
  return path


@pytest.fixture(scope="module")
def exported(data_dir, tmp_path_factory):
  tmp = tmp_path_factory.mktemp("export")
  workdir = str(tmp / "workdir")
  make_workdir(workdir, data_dir)
  out = tmp / "out"
  proc = run_export(f"--workdir={workdir}", f"--output_dir={out}", "--num_verify_clips=8",
                    "--num_representative_clips=8", "--latency_repeats=3")
  assert proc.returncode == 0, proc.stderr[-5000:]
  return out, proc.stdout, workdir


@pytest.mark.slow
def test_output_layout_and_model_card(exported):
  out, stdout, _ = exported
  for path in ("classifier/saved_model.pb", "classifier/assets/class_names.csv",
               "frontend/saved_model.pb", "tflite/model_float32.tflite",
               "tflite/model_dynamic_range.tflite", "tflite/model_int8.tflite",
               "class_names.csv", "verification.json", "README.md"):
    assert (out / path).is_file(), path
  assert f"modules written to {out}" in stdout
  assert not [p for p in os.listdir(out.parent) if ".tmp-" in p]
  card = (out / "README.md").read_text()
  for needle in ("hub.KerasLayer", "ai_edge_litert", "get_signature_runner(\"classify\")",
                 "Speech", "centre_crop", "mobilenet", "[1, 16000]"):
    assert needle in card, needle


@pytest.mark.slow
def test_verification_report(exported):
  out, stdout, _ = exported
  report = json.loads((out / "verification.json").read_text())
  assert report["num_clips"] == 8 and report["clip_samples"] == 16000
  for name, entry in report["savedmodel"].items():
    assert max(entry["max_abs_diff"].values()) <= 1e-5, name
  assert report["frontend_savedmodel"]["max_abs_diff"]["features"] <= 1e-5
  flt = report["tflite"]["float"]
  assert flt["within_goal"] and flt["max_abs_diff"]["scores"] <= 1e-4
  assert flt["max_abs_diff"]["logits"] <= 1e-4 and flt["top1_agreement"] == 1.0
  # The frontend stays float in the quantised models: exact in dynamic range,
  # and in int8 every frontend op but the last one (the backbone's int8 input).
  assert report["tflite"]["dynamic_range"]["max_abs_diff"]["features"] <= 1e-4
  for op in ("CONV_2D", "POW", "DIV", "BATCH_MATMUL"):
    assert op in report["tflite"]["int8"]["ops_running_in_float"], op
  # An untrained backbone maps every clip to nearly the same embedding, so the
  # quantised rankings are only checked loosely here; the demo export reports
  # the agreement of a trained model.
  for q in ("dynamic_range", "int8"):
    entry = report["tflite"][q]
    assert entry["top5_overlap"] >= 0.5, (q, entry)
    assert abs(entry["mAP_change"]) <= 0.25, (q, entry)
  for q, entry in report["tflite"].items():
    assert entry["builtin_ops_only"] and entry["latency_ms_per_clip"] > 0
    assert report["sizes_bytes"][f"tflite_{q}"] > 0
  assert report["sizes_bytes"]["tflite_int8"] < report["sizes_bytes"]["tflite_float"]
  assert all(s["ok"] for tests in report["smoke_tests"].values() for s in tests.values())
  assert set(report["smoke_tests"]) >= {"keras", "savedmodel_serving_default", "tflite_float",
                                        "tflite_int8"}
  assert "within 1e-4 goal" in stdout


@pytest.mark.slow
def test_tflite_with_litert_matches_the_savedmodel(exported, data_dir):
  """Independent of verify.py: LiteRT vs the reloaded hub module on real eval clips."""
  out, _, _ = exported
  batch = next(iter(input_pipeline.make_dataset(
      str(data_dir), "test", batch_size=4, crop_seconds=CROP_SECONDS, mode="eval")))
  audio = batch["audio"].numpy()
  expected = tf.saved_model.load(str(out / "classifier")).signatures["serving_default"](
      waveform=tf.constant(audio))["scores"].numpy()
  scores = {}
  for q in tflite.QUANTIZATIONS:
    interpreter = litert.Interpreter(model_path=layout.ExportLayout(str(out)).tflite(q))
    assert list(interpreter.get_signature_list()) == ["classify"]
    runner = interpreter.get_signature_runner("classify")
    assert list(runner.get_input_details()["waveform"]["shape"]) == [1, 16000]
    scores[q] = np.concatenate([runner(waveform=a[np.newaxis])["scores"] for a in audio])
  np.testing.assert_allclose(scores["float"], expected, atol=1e-4)
  for q in ("dynamic_range", "int8"):
    assert scores[q].shape == expected.shape and np.all(np.isfinite(scores[q])), q


@pytest.mark.slow
def test_no_checkpoint_is_a_clear_error_and_writes_nothing(data_dir, tmp_path):
  workdir = str(tmp_path / "untrained")
  make_workdir(workdir, data_dir, with_checkpoint=False)
  out = tmp_path / "exports" / "out"
  proc = run_export(f"--workdir={workdir}", f"--output_dir={out}")
  assert proc.returncode == 1
  assert "No checkpoint in" in proc.stderr and "Train first" in proc.stderr
  assert not out.exists()
  assert not (tmp_path / "exports").exists() or not os.listdir(tmp_path / "exports")


def test_refuses_a_non_empty_output_dir_and_unknown_formats(tmp_path):
  (tmp_path / "out").mkdir()
  (tmp_path / "out" / "keep.txt").write_text("x")
  with pytest.raises(ValueError, match="not empty and is not an earlier export"):
    export_main.export(str(tmp_path / "workdir"), str(tmp_path / "out"))
  with pytest.raises(ValueError, match="Unknown formats"):
    export_main.export(str(tmp_path / "workdir"), str(tmp_path / "new"), formats=["onnx"])
  assert (tmp_path / "out" / "keep.txt").read_text() == "x"
  assert not (tmp_path / "new").exists()


# --- MediaPipe-ready models and the frame_scores signature (issue 10) -----------------------------

@pytest.fixture(scope="module")
def mediapipe_python():
  """.venv-mediapipe/bin/python, made by the project's script (MediaPipe can't share .venv)."""
  proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "mediapipe_env.sh")],
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.strip().splitlines()[-1]


def top_classes_agree(expected: np.ndarray, got: np.ndarray, atol: float) -> bool:
  """got's top class is one of expected's top classes (ties within atol) and scores match."""
  best = np.flatnonzero(expected >= expected.max() - atol)
  return int(np.argmax(got)) in best and abs(float(got.max()) - float(expected.max())) <= atol


@pytest.mark.slow
def test_mediapipe_audio_classifier_loads_the_task_models(exported, data_dir, mediapipe_python,
                                                          tmp_path):
  out, _, workdir = exported
  batch = next(iter(input_pipeline.make_dataset(
      str(data_dir), "test", batch_size=6, crop_seconds=CROP_SECONDS, mode="eval")))
  audio = batch["audio"].numpy()
  np.save(tmp_path / "clips.npy", audio)
  models = {q: layout.ExportLayout(str(out)).task_model(q) for q in tflite.QUANTIZATIONS}
  proc = subprocess.run([mediapipe_python, os.path.join(ROOT, "tests", "export",
                                                        "mediapipe_check.py"),
                         str(tmp_path / "clips.npy"), "16000", *models.values()],
                        capture_output=True, text=True, timeout=600)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  result = json.loads(lines[-1][len("RESULT "):])

  model, _ = checkpoints.restore_model(workdir, "best")
  keras_scores = model.scores(model(tf.constant(audio), training=False)).numpy()
  classes = json.loads((data_dir / "dataset_info.json").read_text())["classes"]
  for q, path in models.items():
    entry = result[path]
    assert "error" not in entry, (q, entry.get("error"))
    meta = entry["metadata"]
    assert meta["sample_rate"] == 16000 and meta["channels"] == 1
    assert meta["input_content_type"] == 4                       # AudioProperties
    assert meta["input_shape"] == [1, 16000] and "[1, 16000]" in meta["input_description"]
    assert meta["outputs"] == ["scores"] and meta["label_files"] == [["labels.txt", 2]]
    assert meta["num_subgraphs"] == 1 and meta["min_parser_version"] == "1.3.0"
    assert all(meta[k] for k in ("name", "description", "version", "author", "license"))
    assert meta["packed_files"]["labels.txt"].splitlines() == [
        c["display_name"] for c in sorted(classes, key=lambda c: c["index"])]
    # Ours: the Keras model for float32; the int8 "classify" model (LiteRT) for int8.
    if q == "float":
      expected, atol = keras_scores, 1e-4
    else:
      runner = tflite.TFLiteRunner(layout.ExportLayout(str(out)).tflite(q))
      expected, atol = np.concatenate([runner(a)["scores"] for a in audio]), 1e-6
    for mode in ("clip_scores", "stream_scores"):
      got = np.asarray(entry[mode], np.float64)
      assert got.shape == expected.shape, (q, mode, got.shape)
      for i in range(len(audio)):
        assert top_classes_agree(expected[i], got[i], atol), (q, mode, i, expected[i], got[i])


@pytest.mark.slow
def test_export_writes_task_models_and_a_frame_scores_module(exported):
  out, stdout, _ = exported
  report = json.loads((out / "verification.json").read_text())
  for q in tflite.QUANTIZATIONS:
    assert os.path.isfile(layout.ExportLayout(str(out)).task_model(q)), q
    entry = report["mediapipe_task_models"][q]
    assert entry["outputs"] == ["scores"] and entry["max_abs_diff_scores"] == 0.0, (q, entry)
  assert "MediaPipe task model" in stdout
  loaded = tf.saved_model.load(str(out / "classifier"))
  metadata = loaded.signatures["metadata"]()
  assert int(metadata["window_samples"]) == 16000 and int(metadata["hop_samples"]) == 8000
  frames = loaded.signatures["frame_scores"](waveform=tf.zeros([40000]))["scores"]
  assert frames.shape[0] == 1 + -(-(40000 - 16000) // 8000)
  assert loaded.class_map_path().numpy().decode().endswith("class_names.csv")
  card = (out / "README.md").read_text()
  for needle in ("frame_scores", "frames.mean(axis=0)", "class_map_path()", "TFSMLayer",
                 "## On device: MediaPipe Tasks AudioClassifier", "tflite/mediapipe_float32.tflite",
                 "Android (Kotlin", "iOS (Swift", "exactly [1, 16000]", "all-zero outputs"):
    assert needle in card, needle
