"""Single-label (multiclass) runs: the loss, the metrics, the best checkpoint by accuracy, the
config key and its old form, and Speech Commands end to end (prep -> train -> eval -> export)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from sklearn import metrics as sk_metrics

from export import layout
from tests import harness
from tests.export.test_export import mediapipe_python  # noqa: F401  (a fixture)
from tests.train.data import test_speech_commands
from train import checkpoints
from train import metrics
from train import models
from train import train_loop
from train import validation
from train import workdir as workdir_lib
from train.configs import speechcommands
from train.data import dataset_info
from train.data import input_pipeline
from train.data import speech_commands


def log_softmax64(logits):
  z = np.asarray(logits, np.float64)
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_multiclass_loss_is_softmax_cross_entropy_on_one_hot_and_mixed_up_labels():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal([6, 5]).astype(np.float32) * 3
  label = rng.integers(0, 5, size=6)
  one_hot = np.eye(5)[label]
  lam = rng.uniform(size=[6, 1])
  mixed = lam * one_hot + (1 - lam) * np.roll(one_hot, 1, axis=0)   # the pipeline's mixup
  for labels in (one_hot, mixed):
    loss = train_loop.per_example_loss(tf.constant(labels, tf.float32), tf.constant(logits),
                                       multi_label=False).numpy()
    reference = -(labels * log_softmax64(logits)).sum(axis=-1)
    np.testing.assert_allclose(loss, reference, rtol=1e-5, atol=1e-6)


def test_multiclass_metrics_against_a_direct_count():
  rng = np.random.default_rng(1)
  label = np.array([0, 0, 1, 1, 1, 2, 2, 3, 0, 1, 2, 2])
  y_true = np.eye(5)[label]                       # class 4 has no clip
  y_score = rng.random([len(label), 5])
  y_score[[0, 2, 5, 7], label[[0, 2, 5, 7]]] += 1.0     # some right, the rest by chance
  result = metrics.multiclass_metrics(y_true, y_score)
  predicted = [max(range(5), key=lambda c, i=i: y_score[i, c]) for i in range(len(label))]
  correct = [p == t for p, t in zip(predicted, label)]
  assert result["accuracy"] == pytest.approx(sum(correct) / len(label), abs=1e-12)
  assert result["num_correct"] == sum(correct)
  for c in range(4):
    of_c = [ok for ok, t in zip(correct, label) if t == c]
    assert result["per_class_accuracy"][c] == pytest.approx(sum(of_c) / len(of_c), abs=1e-12)
  assert result["per_class_accuracy"][4] is None
  # per-class AP / AUC as for multi-label data (one-vs-rest), class 4 excluded and counted
  for c in range(4):
    assert result["per_class_ap"][c] == pytest.approx(
        sk_metrics.average_precision_score(y_true[:, c], y_score[:, c]), abs=1e-12)
  assert result["num_classes_excluded"] == 1 and result["excluded_classes"] == [4]


@pytest.mark.parametrize("labels, count", [([1, 1, 0], 2), ([0, 0, 0], 0)])
def test_multiclass_metrics_refuse_a_clip_without_exactly_one_label(labels, count):
  y_true = np.array([[1, 0, 0], labels, [0, 0, 1]])
  with pytest.raises(ValueError, match=f"clip 1 .* has {count}"):
    metrics.multiclass_metrics(y_true, np.random.default_rng(0).random([3, 3]))


def test_model_type_sets_the_scores_and_a_bad_one_is_refused(tmp_path):
  config = harness.tiny_config(str(tmp_path))
  config.model.num_classes = 4
  config.model.type = "multiclass"
  model = models.build_model(config)
  logits = tf.constant([[0.5, -1.0, 2.0, 0.0]])
  np.testing.assert_allclose(model.scores(logits).numpy()[0],
                             np.exp(log_softmax64(logits.numpy()))[0], rtol=1e-6)
  assert not model.multi_label
  config.model.type = "multi-label"
  with pytest.raises(ValueError, match="model.type='multi-label' is not one of"):
    validation.validate_config(config)
  with pytest.raises(ValueError, match="model.type='multi-label' is not one of"):
    models.create_model(config)


@pytest.mark.parametrize("saved, expected", [({"multi_label": False}, "multiclass"),
                                             ({"multi_label": True}, "multilabel"),
                                             ({}, "multilabel"),
                                             ({"type": "multiclass"}, "multiclass")])
def test_an_old_workdirs_multi_label_becomes_model_type(tmp_path, saved, expected):
  config = harness.tiny_config(str(tmp_path)).to_dict()
  del config["model"]["type"]
  config["model"].update(saved)
  (tmp_path / "config.json").write_text(json.dumps(config))
  loaded = workdir_lib.Workdir(str(tmp_path)).load_config()
  assert loaded.model.type == expected and "multi_label" not in loaded.model


def test_best_json_records_the_selection_metric_of_the_model_type(tmp_path):
  assert workdir_lib.Workdir(str(tmp_path)).read_best("accuracy") == -1.0
  (tmp_path / "best").mkdir()          # the trainer's best/ CheckpointManager made it
  workdir_lib.Workdir(str(tmp_path)).record_evaluation(
      {}, best=(7, 0.75, metrics.SELECTION_METRIC["multiclass"]))
  assert json.loads((tmp_path / "best" / "best.json").read_text()) == {"step": 7, "accuracy": 0.75}
  assert workdir_lib.Workdir(str(tmp_path)).read_best("accuracy") == 0.75
  with pytest.raises(workdir_lib.RunError, match=r"by \['accuracy'\], not by mAP"):
    workdir_lib.Workdir(str(tmp_path)).read_best()


def test_multiclass_run_names_a_clip_with_two_labels(tmp_path):
  harness.write_dataset(str(tmp_path))         # tone mixtures: some clips have 2-3 labels
  config = harness.tiny_config(str(tmp_path))
  info = dataset_info.read(str(tmp_path))
  validation.check_single_label(config, info, "train_and_eval")    # multilabel: not checked
  config.model.type = "multiclass"
  with pytest.raises(workdir_lib.RunError,
                     match=r"multiclass, but clip '(train|eval)_\d+' of .*\.tfrecord \(split "
                           r"'(train|eval)'\) has [23] labels"):
    validation.check_single_label(config, info, "train_and_eval")


def test_speechcommands_config_is_audaxs_recipe():
  config = speechcommands.get_config("mel")
  assert config.model.type == "multiclass" and config.model.num_classes == 35
  assert (config.dataset.eval_split, config.dataset.test_split) == ("validation", "test")
  assert config.dataset.crop_seconds == 1.0 and config.dataset.mixup_alpha == 0.0
  assert (config.batch_size, config.num_epochs) == (1024, 50)
  assert config.optimizer.base_learning_rate == 5e-4 and config.optimizer.weight_decay == 1e-4
  assert config.optimizer.warmup_epochs == 5.0 and config.model.dropout == 0.4
  augment = config.model.spec_augment
  assert (augment.max_freq_width, augment.max_time_width) == (8, 10)
  assert (augment.num_freq_masks, augment.num_time_masks) == (2, 2)
  assert config.frontend.name == "mel" and config.frontend.n_filters == 64
  assert speechcommands.get_config("leaf").frontend.name == "leaf"
  assert "0.9344" in speechcommands.__doc__ and "0.9562" in speechcommands.__doc__


# --- Speech Commands end to end on a generated tree ---------------------------------------------

def run(module, *args, timeout=900):
  proc = subprocess.run([sys.executable, "-m", module, *args], cwd=harness.REPO,
                        capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, (module, proc.stderr[-4000:])
  return proc


def trained_overrides(data_dir) -> dict:
  """The tiny run (tests/harness.py) on the prepared tree: 1 s crops, its three splits."""
  return {**harness.TINY, "dataset.data_dir": data_dir, "dataset.crop_seconds": 1.0,
          "dataset.eval_split": "validation", "dataset.test_split": "test",
          "batch_size": 6, "eval_batch_size": 6}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(data_dir, workdir, export_dir) after prep, 2 tiny epochs, --mode=eval and export."""
  base = tmp_path_factory.mktemp("speech_commands")
  tree, data_dir, workdir, out = (str(base / name) for name in ("sc", "data", "run", "export"))
  test_speech_commands.write_tree(tree)
  run("train.data.prepare_data", *test_speech_commands.prepare_command(tree, data_dir)[3:])
  flags = [f"--config.{key}={value}" for key, value in trained_overrides(data_dir).items()]
  for mode in ("train_and_eval", "eval"):
    run("train.main", "--config=train/configs/speechcommands.py:mel", f"--workdir={workdir}",
        f"--mode={mode}", *flags)
  run("export.main", f"--workdir={workdir}", f"--output_dir={out}",
      "--formats=saved_model,tflite", "--num_verify_clips=6", "--latency_repeats=1")
  return data_dir, workdir, out


@pytest.mark.slow
def test_speech_commands_trains_and_evaluates_by_accuracy(trained):
  data_dir, workdir, _ = trained
  info = workdir_lib.Workdir(workdir).read_run_info()
  assert info["multi_label"] is False and len(info["classes"]) == 35
  assert workdir_lib.Workdir(workdir).load_config().model.type == "multiclass"
  results = json.loads(open(os.path.join(workdir, "eval_results.json")).read())
  splits = dataset_info.read(data_dir)["splits"]
  num_clips = {split: s["num_examples"] for split, s in splits.items()}
  for scored, split in ((results, "validation"), (results["test"], "test")):
    assert scored["split"] == split
    crop = scored["centre_crop"]
    assert crop["num_examples"] == num_clips[split]
    assert crop["accuracy"] == pytest.approx(crop["num_correct"] / num_clips[split])
    # 3 of the 35 words have clips: the other 32 classes have no accuracy
    assert sum(a is not None for a in crop["per_class_accuracy"]) == 3
    assert 0.0 <= scored["random_scores"]["accuracy"] <= 1.0
  best = json.loads(open(os.path.join(workdir, "best", "best.json")).read())
  assert set(best) == {"step", "accuracy"}
  # best/ holds the checkpoint --mode=eval scored: its validation accuracy is the recorded one
  assert results["centre_crop"]["accuracy"] == pytest.approx(best["accuracy"], abs=1e-9)


@pytest.mark.slow
def test_a_multilabel_config_is_refused_on_the_multiclass_workdir(trained):
  data_dir, workdir, _ = trained
  before = sorted(os.listdir(workdir))
  proc = subprocess.run([sys.executable, "-m", "train.main",
                         "--config=train/configs/speechcommands.py:mel", f"--workdir={workdir}",
                         "--config.model.type=multilabel", "--mode=train_and_eval",
                         *[f"--config.{key}={value}" for key, value in trained_overrides(
                             data_dir).items()]],
                        cwd=harness.REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode != 0
  assert "config.model.type='multilabel', but workdir" in proc.stderr
  assert "trained a multiclass model" in proc.stderr
  assert sorted(os.listdir(workdir)) == before


@pytest.mark.slow
def test_speech_commands_export_scores_are_softmax(trained):
  data_dir, workdir, out = trained
  card = open(os.path.join(out, "README.md")).read()
  assert "softmax (single-label: a clip's scores sum to 1)" in card and "| accuracy |" in card
  loaded = tf.saved_model.load(os.path.join(out, "classifier"))
  assert not bool(loaded.signatures["metadata"]()["multi_label"])
  rng = np.random.default_rng(0)
  clips = (0.1 * rng.standard_normal([3, 16000])).astype(np.float32)
  saved = loaded.signatures["serving_default"](waveform=tf.constant(clips))
  np.testing.assert_allclose(saved["scores"].numpy(),
                             np.exp(log_softmax64(saved["logits"].numpy())), atol=1e-6)
  # The float32 TFLite model through LiteRT (MediaPipe's task model: the test below)
  interpreter = litert.Interpreter(model_path=os.path.join(out, "tflite", "model_float32.tflite"))
  interpreter.allocate_tensors()
  runner = interpreter.get_signature_runner()
  for clip in clips:
    outputs = runner(waveform=clip[np.newaxis])
    np.testing.assert_allclose(outputs["scores"], np.exp(log_softmax64(outputs["logits"])),
                               atol=1e-6)
    np.testing.assert_allclose(outputs["scores"].sum(), 1.0, atol=1e-5)
  model_words = [c["id"] for c in workdir_lib.Workdir(workdir).read_run_info()["classes"]]
  assert model_words == list(speech_commands.WORDS)


@pytest.mark.slow
def test_mediapipe_audio_classifier_runs_the_keyword_spotter(trained, mediapipe_python, tmp_path):
  data_dir, workdir, out = trained
  batch = next(iter(input_pipeline.make_dataset(data_dir, "test", batch_size=6,
                                                crop_seconds=1.0, mode="eval")))
  clips = batch["audio"].numpy()
  np.save(tmp_path / "clips.npy", clips)
  task_model = layout.ExportLayout(out).task_model("float")
  proc = subprocess.run([mediapipe_python, os.path.join(harness.REPO, "tests", "export",
                                                        "mediapipe_check.py"),
                         str(tmp_path / "clips.npy"), "16000", task_model],
                        capture_output=True, text=True, timeout=600)
  lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  entry = json.loads(lines[-1][len("RESULT "):])[task_model]
  assert "error" not in entry, entry.get("error")
  assert entry["metadata"]["packed_files"]["labels.txt"].splitlines() == list(
      speech_commands.WORDS)
  model, _ = checkpoints.restore_model(workdir, "best")
  expected = model.scores(model(tf.constant(clips), training=False)).numpy()
  for mode in ("clip_scores", "stream_scores"):
    got = np.asarray(entry[mode], np.float64)
    np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=mode)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4, err_msg=mode)   # softmax
