r"""Exports a trained run as TF-Hub modules and TFLite models, and verifies them.

python -m export.main --workdir=DIR --output_dir=OUT [--checkpoint=best|latest|PATH] \
    [--formats=saved_model,tflite,tflite_dynamic_range,tflite_int8]

OUT/ (export/layout.py names every file)
  classifier/     reusable SavedModel (hub.KerasLayer; signatures serving_default,
                  classify_clip, class_names, metadata; assets/class_names.csv)
  frontend/       reusable SavedModel of the frontend alone (waveform -> features)
  tflite/         the classifier per quantization (signature "classify", input [1, crop
                  samples]) and the MediaPipe AudioClassifier models (scores only); all
                  with TFLite Model Metadata and labels
  class_names.csv index,id,display_name (for TFLite users)
  verification.json, README.md (model card), the marker (export/output_dir.py)

Everything export needs comes from the workdir (config.json, run_info.json, a
checkpoint). Export only reads the workdir. While a trainer holds the workdir's lock,
`--checkpoint=latest` is refused, naming the trainer (what "latest" means changes while it
runs); `best` or a checkpoint path is exported with a warning naming it, and a checkpoint the
trainer rotates away while it is read is looked up again, not called damaged. The verification clips and the
int8 calibration clips come from the run's eval split (--data_dir, default the run's data
folder); when that folder is gone, from synthetic signals, with a warning (no mAP in the report
then).

OUT must be new, empty or an earlier export (--overwrite): export never writes
into, over or around a training workdir and never deletes what it did not write.
Everything is written to a temporary directory beside OUT and renamed at the
end, so a failed export (no checkpoint, a smoke test or a conversion failing)
leaves nothing behind.
"""
from train import console  # first: TensorFlow's C++ log level (off unless --verbose)
import legacy_keras  # noqa: F401,E402  (before TF: tf.keras must be tf_keras)

import json
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from export import layout as layout_lib
from export import model_card
from export import output_dir as output_dir_lib
from export import tflite
from export import tflite_metadata
from export import verify
from hub_modules import classifier_module
from hub_modules import frontend_module
from hub_modules import reusable
from train import checkpoints
from train import workdir as workdir_lib
from train.data import dataset_info
from train.data import input_pipeline

FORMATS = ("saved_model", "tflite", "tflite_dynamic_range", "tflite_int8")
QUANTIZATION_OF_FORMAT = {"tflite": "float", "tflite_dynamic_range": "dynamic_range",
                          "tflite_int8": "int8"}

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("workdir", None, "Training workdir (config.json, checkpoints/, best/).")
  flags.DEFINE_string("output_dir", None, "Where the modules go: a new or empty folder, or an "
                      "earlier export (with --overwrite).")
  flags.DEFINE_string("data_dir", "", "Data for the verification / int8 calibration clips; "
                      "empty: the run's data folder.")
  flags.DEFINE_string("checkpoint", "best", "best | latest | a checkpoint path (prefix).")
  flags.DEFINE_list("formats", list(FORMATS), f"Any of {', '.join(FORMATS)}.")
  flags.DEFINE_float("tflite_seconds", 0.0, "TFLite input length; 0: the training crop.")
  flags.DEFINE_integer("num_verify_clips", 64, "Eval clips for the verification report.")
  flags.DEFINE_integer("num_representative_clips", 32, "Eval clips calibrating int8.")
  flags.DEFINE_integer("latency_repeats", 10, "Timed TFLite calls per model (median).")
  flags.DEFINE_bool("overwrite", False, "Replace an earlier export in output_dir.")
  flags.mark_flags_as_required(["workdir", "output_dir"])
  console.define_verbose_flag()


def eval_clips(data_dir: str, split: str, sample_rate: int, num_samples: int, num_clips: int):
  """(waveforms [N, num_samples], labels [N, C]): centre crops of the first eval clips."""
  ds = input_pipeline.make_dataset(
      data_dir, split, batch_size=min(num_clips, 64),
      crop_seconds=num_samples / sample_rate, mode="eval")
  audio, labels = [], []
  for batch in ds:
    audio.append(batch["audio"].numpy())
    labels.append(batch["labels"].numpy())
    if sum(len(a) for a in audio) >= num_clips:
      break
  if not audio:
    raise ValueError(f"The eval split {split!r} of {data_dir} is empty: nothing to verify on.")
  waveforms = np.concatenate(audio)[:num_clips]
  waveforms = np.stack([tflite.fit_length(w, num_samples) for w in waveforms])
  return waveforms, np.concatenate(labels)[:num_clips]


def synthetic_clips(num_samples: int, num_clips: int, sample_rate: int, seed: int = 0):
  """[N, num_samples] float32 in [-1, 1]: tones, chirps and noise at random levels, for
  verifying (without labels) when the run's data is gone."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_samples) / sample_rate
  clips = []
  for i in range(num_clips):
    f0, f1 = rng.uniform(50.0, 0.45 * sample_rate, size=2)
    f1 = f1 if i % 2 else f0                        # odd clips sweep, even ones hold a tone
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1]))
    clip = rng.uniform(0.0, 0.6) * np.sin(phase)
    clip += rng.uniform(0.0, 0.3) * rng.standard_normal(num_samples)
    clips.append(np.clip(clip * rng.uniform(0.05, 1.0), -1.0, 1.0))
  return np.asarray(clips, np.float32)


def verification_clips(config, run_info: dict, workdir, data_dir: str, num_samples: int,
                       num_clips: int):
  """(waveforms, labels or None, where they came from): the run's eval split when its data
  (with the run's classes) is at hand, else synthetic clips."""
  data_dir = data_dir or config.dataset.data_dir
  split = config.dataset.eval_split
  if dataset_info.exists(data_dir):
    workdir.check_data_matches(run_info, dataset_info.read(data_dir), data_dir)
    waveforms, labels = eval_clips(data_dir, split, run_info["sample_rate"], num_samples,
                                   num_clips)
    return waveforms, labels, f"eval split {split!r} of {data_dir}"
  logging.warning("The run's data (%r) is not here: verifying on synthetic signals (no mAP) and "
                  "calibrating int8 on them. Pass --data_dir=... for real clips.", data_dir)
  return (synthetic_clips(num_samples, num_clips, run_info["sample_rate"]), None,
          f"synthetic signals (data folder {data_dir!r} not found)")


def _write_hub_modules(model, classes, min_samples, out, files, sizes, waveforms,
                       window_samples):
  """Writes the classifier and frontend modules into `out` (an ExportLayout); returns
  (SavedModel call fns, frontend parity)."""
  classifier_dir, frontend_dir = out.classifier, out.frontend
  classifier_module.save_classifier_module(model, classes, classifier_dir,
                                           min_samples=min_samples,
                                           window_samples=window_samples)
  frontend_module.save_frontend_module(
      frontend_module.FrontendModule(model.frontend, min_samples=min_samples), frontend_dir)
  files["classifier hub module (reusable SavedModel)"] = out.relative(classifier_dir)
  files["frontend hub module (reusable SavedModel)"] = out.relative(frontend_dir)
  sizes["classifier"] = verify.directory_bytes(classifier_dir)
  sizes["frontend"] = verify.directory_bytes(frontend_dir)
  loaded = tf.saved_model.load(classifier_dir)     # reloaded, as a user gets it
  serving = loaded.signatures["serving_default"]
  fns = {"__call__": lambda w: loaded(tf.constant(w)),
         "serving_default": lambda w: serving(waveform=tf.constant(w))}
  features = tf.saved_model.load(frontend_dir)(tf.constant(waveforms)).numpy()
  expected = model.frontend(tf.constant(waveforms)).numpy()
  return fns, {"max_abs_diff": {"features": float(np.max(np.abs(features - expected)))}}


def _write_tflite(model, num_samples, quantizations, representative, out, files, sizes,
                  metadata):
  """Writes the TFLite models (+ MediaPipe task models) into `out` (an ExportLayout);
  returns ({q: TFLiteRunner}, task ones).

  metadata: keyword arguments of tflite_metadata.add_metadata.
  """
  converted = tflite.convert(
      lambda w: classifier_module.classifier_outputs(model, w), num_samples, quantizations,
      representative_waveforms=representative, float_scope=model.frontend.name,
      tmp_parent=out.root)         # inside the staging folder: removed with it, even after a kill
  os.makedirs(out.tflite_dir)
  runners, task_runners = {}, {}
  for q, content in converted.items():
    content, task = tflite_metadata.add_metadata(content, num_samples=num_samples, **metadata)
    path, task_path = out.tflite(q), out.task_model(q)
    for name, data in ((path, content), (task_path, task)):
      with open(name, "wb") as f:
        f.write(data)
    what = "float32" if q == "float" else q
    files[f"TFLite {what}"] = out.relative(path)
    files[f"MediaPipe AudioClassifier {what}"] = out.relative(task_path)
    sizes["tflite_" + q] = len(content)
    runners[q] = tflite.TFLiteRunner(path)
    task_runners[q] = tflite.TFLiteRunner(task_path)
  return runners, task_runners


def export(workdir: str, output_dir: str, *, checkpoint: str = "best", formats=FORMATS,
           tflite_seconds: float = 0.0, num_verify_clips: int = 64,
           num_representative_clips: int = 32, latency_repeats: int = 10,
           overwrite: bool = False, data_dir: str = "") -> dict:
  """Writes OUT (see the module doc); returns the verification report."""
  unknown = sorted(set(formats) - set(FORMATS))
  if unknown or not formats:
    raise ValueError(f"Unknown formats {unknown}; choose from {list(FORMATS)}.")
  output_dir = os.path.abspath(output_dir)
  output_dir_lib.check(output_dir, workdir, overwrite)
  workdir = workdir_lib.Workdir(workdir)
  holder = workdir.lock_holder()
  if holder is not None and checkpoint == "latest":
    raise workdir_lib.RunError(
        f"{workdir} is being trained by {holder}: its latest checkpoint changes while that run "
        "goes on. Wait for it to end, or export a fixed checkpoint: "
        f"--checkpoint={workdir.checkpoint_path('N')} (or best).")
  if holder is not None:         # a reader may go on: restore_run reads a complete checkpoint
    logging.warning("%s is being written by %s: exporting its %s checkpoint as of now.",
                    workdir, holder, checkpoint)
  for path in output_dir_lib.clean_leftovers(output_dir):
    logging.info("Removed %s, left by a killed export.", path)
  model, config, path = checkpoints.restore_run(workdir, checkpoint)
  run_info = workdir.read_run_info()
  checkpoint = workdir.relative(path) if checkpoint in ("best", "latest") else path
  classes = run_info["classes"]
  sample_rate = int(run_info["sample_rate"])
  num_samples = input_pipeline.crop_length_samples(tflite_seconds or run_info["crop_seconds"],
                                                  sample_rate)
  num_classes = int(model.num_classes)
  min_samples = model.frontend.min_samples

  keras_outputs = tf.function(lambda w: classifier_module.classifier_outputs(model, w),
                              reduce_retracing=True)
  keras_fn = lambda w: {k: v.numpy() for k, v in keras_outputs(tf.constant(w)).items()}
  # Smoke test before writing anything: a model that already gives NaN is not exported.
  verify.smoke_test(keras_fn, num_samples, num_classes, sample_rate=sample_rate,
                    name="the restored Keras model")
  waveforms, labels, clip_source = verification_clips(
      config, run_info, workdir, data_dir, num_samples,
      max(num_verify_clips, num_representative_clips))
  representative = waveforms[:num_representative_clips]
  waveforms = waveforms[:num_verify_clips]
  labels = None if labels is None else labels[:num_verify_clips]

  with output_dir_lib.Staging(output_dir) as staging:
    out = layout_lib.ExportLayout(staging.path)
    files, sizes = {}, {}
    class_names = reusable.write_class_names_csv(classes, out.root)
    files["class names (index,id,display_name)"] = out.relative(class_names)
    savedmodel_fns, frontend_report = {}, None
    if "saved_model" in formats:
      savedmodel_fns, frontend_report = _write_hub_modules(
          model, classes, min_samples, out, files, sizes, waveforms[:8],
          window_samples=input_pipeline.crop_length_samples(config.dataset.crop_seconds,
                                                            sample_rate))
    quantizations = [QUANTIZATION_OF_FORMAT[f] for f in FORMATS
                     if f in formats and f in QUANTIZATION_OF_FORMAT]
    metadata = dict(classes=classes, sample_rate=sample_rate,
                    multi_label=bool(model.multi_label), version=f"{checkpoint} checkpoint",
                    name=f"{config.frontend.name} + {config.model.backbone} audio classifier",
                    description=f"Trained on {config.dataset.data_dir} with tf-frontends.")
    runners, task_runners = _write_tflite(
        model, num_samples, quantizations, representative, out, files, sizes,
        metadata) if quantizations else ({}, {})

    report = verify.verify(keras_fn=keras_fn, savedmodel_fns=savedmodel_fns,
                           tflite_runners=runners, waveforms=waveforms, labels=labels,
                           sizes=sizes, num_classes=num_classes, sample_rate=sample_rate,
                           latency_repeats=latency_repeats)
    if frontend_report:
      report["frontend_savedmodel"] = frontend_report
    report["mediapipe_task_models"] = verify.task_model_parity(runners, task_runners,
                                                               waveforms)
    report.update({"int8_calibration": (
                       f"the first {len(representative)} of these eval clips (the verification "
                       "clips overlap them)") if "tflite_int8" in formats else None,
                   "latency_threads": 1,
                   "clips": clip_source,
                   "workdir": os.path.abspath(workdir.path), "checkpoint": checkpoint,
                   "formats": list(formats), "tflite_num_samples": num_samples,
                   "tensorflow": tf.__version__})
    with open(out.verification, "w") as f:
      json.dump(report, f, indent=2)
    files["verification report"] = out.relative(out.verification)

    card = model_card.render(
        config=config, classes=classes, eval_results=workdir.read_eval_results() or None,
        verification=report,
        checkpoint=checkpoint, num_samples=num_samples, sample_rate=sample_rate,
        min_samples=min_samples, multi_label=bool(model.multi_label), files=files)
    with open(out.model_card, "w") as f:
      f.write(card)
    staging.commit(workdir=os.path.abspath(workdir.path), checkpoint=checkpoint)
  return report


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    report = export(FLAGS.workdir, FLAGS.output_dir, checkpoint=FLAGS.checkpoint,
                    formats=FLAGS.formats, tflite_seconds=FLAGS.tflite_seconds,
                    num_verify_clips=FLAGS.num_verify_clips,
                    num_representative_clips=FLAGS.num_representative_clips,
                    latency_repeats=FLAGS.latency_repeats, overwrite=FLAGS.overwrite,
                    data_dir=FLAGS.data_dir)
  except (OSError, ValueError, tf.errors.OpError) as e:   # OpError: e.g. a full disk
    console.fail("export", e)
  for line in verify.summary_lines(report):
    print(line)
  out = layout_lib.ExportLayout(os.path.abspath(FLAGS.output_dir))
  print(f"modules written to {out.root}: {out.relative(out.classifier)}/ and "
        f"{out.relative(out.frontend)}/ (TF-Hub), {out.relative(out.tflite_dir)}/, "
        f"{out.relative(out.model_card)}, {out.relative(out.verification)}", flush=True)


def run():
  """Console-script entry point (tf-frontends-export)."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
