r"""Data prep: labelled audio files -> sharded TFRecords + dataset_info.json (see shared/DESIGN.md, Data).

  # a CSV manifest (path,labels[,id][,split]) and a label map (CSV or JSON)
  python -m train.data.prepare_data --manifest=train=train.csv,eval=eval.csv --label_map=labels.csv \
      --output_dir=/data/mine
  # AudioSet's own files; clips already downloaded into --audio_dir, named by YTID
  python -m train.data.prepare_data --label_map=class_labels_indices.csv --audio_dir=/data/clips \
      --audioset_segments=train=balanced_train_segments.csv,eval=eval_segments.csv --output_dir=/data/as
  # TFRecords in the audax layout (FLAC bytes under `audio`, int64 list `label`), converted here
  python -m train.data.prepare_data --label_map=class_labels_indices.csv \
      --audax_tfrecords='train=/data/audax/train*.tfrec,eval=/data/audax/eval*.tfrec' --output_dir=/data/as
  # Speech Commands v0.02 as released (train / validation / test, the 35 words: speech_commands.py)
  python -m train.data.prepare_data --speech_commands=/data/speech_commands_v0.02 \
      --output_dir=/data/sc

Every input is decoded with soundfile (WAV, FLAC, OGG, ... any rate, any channel count), downmixed to
mono, resampled with scipy's polyphase filter to --sample_rate and stored as 16-bit PCM WAV bytes.
Conversion runs in --num_workers processes; output is deterministic for the same inputs and flags.
Bad inputs (missing / empty / corrupt / truncated / non-audio / NaN files, unknown labels, duplicate
ids, sample rates outside 1-768 kHz, clips over --max_clip_seconds judged from their header) are
skipped and listed with their reason in dataset_info.json. Shards are written under a temporary
name and renamed when complete; rerunning after a kill reuses the finished shards (their
fingerprints, record counts and sizes live in DIR/.prepare_state/). While a run writes, the folder
holds dataset_info.incomplete and readers refuse it; shards of an earlier run that this run does
not list are removed at the end (only names prep itself recorded). A bad flag or input file is one
line on stderr (exit 2 for flags, 1 otherwise; --verbose shows the traceback).
"""
import glob
import hashlib
import json
import multiprocessing
import os
import re
import sys
import zlib
from typing import Dict, List, Optional

from train import console  # first: TensorFlow's C++ log level (off unless --verbose)
import legacy_keras  # noqa: F401,E402  (before TensorFlow)

import numpy as np
from absl import app, flags, logging

from train import atomic_json
from train import progress
from train.data import audio_io, dataset_info, manifests, speech_commands, tfrecords

FLAGS = flags.FLAGS

_STATE_DIR = ".prepare_state"
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")
_SHARD_NAME_RE = re.compile(r"^[A-Za-z0-9_]+-\d{5}-of-\d{5}\.tfrecord$")   # what prep names shards


def define_flags():
  """Flags of the binary (only when run as one, so importing this module defines none)."""
  console.define_verbose_flag()
  flags.DEFINE_list("manifest", [], "CSV manifests, each `[split=]path.csv` (default split: the CSV's "
                    "`split` column, else train).")
  flags.DEFINE_string("label_map", None, "Label map: CSV (index,id|mid,display_name) or JSON.")
  flags.DEFINE_list("audioset_segments", [], "AudioSet segment CSVs, each `[split=]path.csv` (default "
                    "split: eval if the file name contains 'eval', else train).")
  flags.DEFINE_string("audio_dir", None, "Folder (searched recursively) of downloaded AudioSet clips.")
  flags.DEFINE_list("audax_tfrecords", [], "audax-layout TFRecord globs, each `[split=]glob`.")
  flags.DEFINE_integer("audax_sample_rate", 16000, "Rate of audax records that store float tensors.")
  flags.DEFINE_string("speech_commands", None, "Speech Commands v0.02 release folder (its own "
                      "splits and 35-word label map; no --label_map).")
  flags.DEFINE_string("output_dir", None, "Where shards and dataset_info.json go.")
  flags.DEFINE_integer("sample_rate", 16000, "Target sample rate in Hz.")
  flags.DEFINE_integer("examples_per_shard", 256, "Shard size before skips (~80 MB of 10 s clips).")
  flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Conversion processes (1: in-process).")
  flags.DEFINE_integer("seed", 0, "Seed of the example order within a split.")
  flags.DEFINE_float("max_clip_seconds", audio_io.DEFAULT_MAX_SECONDS, "Longer inputs are skipped "
                     "(reason 'too long'), judged from their header before decoding: bounds "
                     "prep's memory (about 12 bytes per output sample).")


def _convert(task):
  """Worker: (source, rate, sample_rate, max_seconds) -> ("ok", wav_bytes, num_samples, clipped)
  | ("skip", reason); clipped: None, or {"clipped_samples", "peak"} of a clip beyond [-1, 1].

  Memory: the decoded mono float32 clip (its length checked against max_seconds from the header
  first), then its int16 WAV bytes.
  """
  source, rate, sample_rate, max_seconds = task
  try:
    if source is None:
      return "skip", "record no longer readable"
    if not isinstance(source, np.ndarray):
      source, rate = audio_io.decode(source, max_seconds, mono=True)
    samples = audio_io.resampled_mono(source, rate, sample_rate, max_seconds)
    del source
    over = int(np.count_nonzero(samples > 1.0)) + int(np.count_nonzero(samples < -1.0))
    clipped = ({"clipped_samples": over,
                "peak": round(float(max(samples.max(), -samples.min())), 4)} if over else None)
    if over:            # a new array: samples may be the caller's own (a float array source)
      samples = np.clip(samples, -1.0, 1.0)
    pcm = audio_io.to_int16(samples)
    del samples         # before the WAV bytes exist: at most the float clip + its PCM at once
    return "ok", audio_io.pcm_wav(pcm, sample_rate), int(pcm.shape[0]), clipped
  except audio_io.AudioError as e:
    return "skip", str(e)
  except Exception as e:  # noqa: BLE001  (a bad file must never stop the run)
    return "skip", f"unexpected error ({type(e).__name__}: {e})"


def _fingerprint_entry(entry: manifests.Entry) -> str:
  source = entry.source
  if isinstance(source, tfrecords.AudaxRecord):
    st = os.stat(source.path)
    detail = f"{source.index}:{st.st_size}:{st.st_mtime_ns}"
  elif isinstance(source, np.ndarray):
    detail = hashlib.sha1(source.tobytes()).hexdigest() + f"@{entry.rate}"
  elif isinstance(source, (bytes, bytearray)):
    detail = hashlib.sha1(source).hexdigest()
  else:
    try:
      st = os.stat(source)
      detail = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
      detail = "missing"
  return f"{entry.id}|{list(entry.labels)}|{list(entry.events)}|{entry.origin}|{detail}"


def _shard_fingerprint(entries, classes, sample_rate) -> str:
  h = hashlib.sha1(json.dumps([sample_rate, classes], sort_keys=True).encode())
  for entry in entries:
    h.update(_fingerprint_entry(entry).encode())
  return h.hexdigest()


def _plan_shards(split, entries, examples_per_shard, seed):
  """Deterministic order (seeded by seed and split name) cut into contiguous shards.

  audax records keep their order (they are streamed from their files; audax shards are shuffled).
  """
  if any(isinstance(e.source, tfrecords.AudaxRecord) for e in entries):
    order = np.arange(len(entries))
  else:
    order = np.random.default_rng([seed, zlib.crc32(split.encode())]).permutation(len(entries))
  num_shards = max(1, -(-len(entries) // examples_per_shard))
  return [[entries[i] for i in part] for part in np.array_split(order, num_shards)]


def _write_json(path, data):
  atomic_json.write(path, data, tmp_suffix=tfrecords.TMP_SUFFIX, indent=1, sort_keys=True)


def _load_state(path):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def prepare(entries: Dict[str, List[manifests.Entry]], classes: List[dict], output_dir: str, *,
            skipped: Optional[Dict[str, List[dict]]] = None, sample_rate: int = 16000,
            examples_per_shard: int = 256, num_workers: int = 1, seed: int = 0,
            extra_info: Optional[dict] = None, quiet: bool = False,
            max_clip_seconds: float = audio_io.DEFAULT_MAX_SECONDS) -> dict:
  """Converts `entries` ({split: [Entry]}) into shards; writes and returns dataset_info.

  `skipped` holds what the readers already rejected ({split: [{"file", "reason"}]}); ids repeated
  across splits are skipped here (the first split listed keeps them). The folder is marked
  incomplete (dataset_info.INCOMPLETE_MARKER, which readers refuse) before the first shard is
  touched and unmarked last; shards an earlier run wrote that this run does not list are removed.
  """
  if examples_per_shard < 1 or sample_rate < 1 or not max_clip_seconds > 0:
    raise ValueError("examples_per_shard, sample_rate and max_clip_seconds must be positive")
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise ValueError(f"--output_dir {output_dir} exists and is not a folder")
  # what dataset_info.read will demand of the folder: refused now, not at train start
  manifests.check_class_names(classes, "classes", [f"class {c['index']}" for c in classes])
  skipped = {split: list(s) for split, s in (skipped or {}).items()}
  seen, plan = set(), {}
  for split, split_entries in entries.items():
    if not _SPLIT_RE.match(split):
      raise ValueError(f"split name {split!r} must match {_SPLIT_RE.pattern}")
    kept = []
    for entry in split_entries:
      if entry.id in seen:
        skipped.setdefault(split, []).append(manifests.skipped(entry.origin,
                                                               f"duplicate id {entry.id!r}"))
        continue
      seen.add(entry.id)
      kept.append(entry)
    plan[split] = _plan_shards(split, kept, examples_per_shard, seed) if kept else []

  os.makedirs(os.path.join(output_dir, _STATE_DIR), exist_ok=True)
  earlier_shards = _shards_written_before(output_dir)
  with open(dataset_info.marker_path(output_dir), "w", encoding="utf-8") as f:
    f.write("data prep is writing this folder; it is usable once this file is gone\n")
  for folder in (output_dir, os.path.join(output_dir, _STATE_DIR)):
    for stale in glob.glob(os.path.join(folder, "*" + tfrecords.TMP_SUFFIX)):
      os.remove(stale)                             # half-written files of a killed run
  # Shards already complete (final file + matching fingerprint) are reused, not redone.
  jobs = []
  for split, shards in plan.items():
    for k, shard_entries in enumerate(shards):
      name = f"{split}-{k:05d}-of-{len(shards):05d}.tfrecord"
      fingerprint = _shard_fingerprint(shard_entries, classes, sample_rate)
      state_path = os.path.join(output_dir, _STATE_DIR, name + ".json")
      state = _load_state(state_path)
      shard_path = os.path.join(output_dir, name)
      size = os.path.getsize(shard_path) if os.path.isfile(shard_path) else None
      done = (state is not None and state.get("fingerprint") == fingerprint
              and size is not None and size == state.get("num_bytes", size))   # not truncated
      jobs.append(dict(split=split, name=name, entries=shard_entries, fingerprint=fingerprint,
                       state_path=state_path, state=state if done else None))
  pending = [job for job in jobs if job["state"] is None]
  total = sum(len(job["entries"]) for job in pending)
  bar = None if quiet else progress.Progress(f"converting {len(pending)} shard(s)", total, "files")
  reused = len(jobs) - len(pending)
  if reused and not quiet:
    logging.info("Reusing %d complete shard(s) from an earlier run.", reused)

  pool = (multiprocessing.get_context("fork").Pool(num_workers)
          if num_workers > 1 and total > 1 else None)
  audax = tfrecords.AudaxReader()

  def task(entry):
    source = entry.source
    if isinstance(source, tfrecords.AudaxRecord):
      source = audax(source)
      if source is None:
        return None, None, sample_rate, max_clip_seconds
    return source, entry.rate, sample_rate, max_clip_seconds

  try:
    for job in pending:
      # one shard at a time: the task queue and the results held stay bounded by a shard
      tasks = [task(entry) for entry in job["entries"]]
      results = pool.imap(_convert, tasks, chunksize=4) if pool else map(_convert, tasks)
      state = dict(fingerprint=job["fingerprint"], num_examples=0, class_counts=[0] * len(classes),
                   skipped=[], seconds=0.0, clipped=[])

      def shard_records(entries=job["entries"], results=results, state=state):
        """Each converted record as it comes (written at once, not held for the shard)."""
        for entry in entries:
          status, *payload = next(results)
          if bar:
            bar.update()
          if status == "skip":
            state["skipped"].append(manifests.skipped(entry.origin, payload[0]))
            continue
          yield tfrecords.make_example(payload[0], entry.labels, entry.id, entry.events)
          if payload[2]:
            state["clipped"].append({"file": entry.origin, **payload[2]})
          for label in entry.labels:
            state["class_counts"][label] += 1
          state["num_examples"] += 1
          state["seconds"] += payload[1] / sample_rate

      shard_path = os.path.join(output_dir, job["name"])
      tfrecords.write_shard(shard_path, shard_records())
      job["state"] = {**state, "num_bytes": os.path.getsize(shard_path)}
      _write_json(job["state_path"], job["state"])
  finally:
    if pool:
      pool.terminate()
  if bar:
    bar.close()
  info = _dataset_info(jobs, plan, classes, sample_rate, skipped, extra_info, output_dir)
  _write_json(os.path.join(output_dir, dataset_info.FILE_NAME), info)
  _remove_shards(output_dir, earlier_shards - {job["name"] for job in jobs})
  os.remove(dataset_info.marker_path(output_dir))
  if info["clipped"] and not quiet:
    logging.warning("%d file(s) exceed [-1, 1] and were clipped (listed under 'clipped' in %s), "
                    "e.g. %s (peak %.3g, %d samples). Scale float sources into [-1, 1] first.",
                    len(info["clipped"]), dataset_info.FILE_NAME, info["clipped"][0]["file"],
                    info["clipped"][0]["peak"], info["clipped"][0]["clipped_samples"])
  return info


def empty_splits(info: dict) -> list:
  """One message per split of dataset_info without a usable example, saying why."""
  messages = []
  for split in (s for s, entry in info["splits"].items() if entry["num_examples"] == 0):
    kinds = [_reason_kind(s["reason"]) for s in info["skipped"] if s["split"] == split]
    why = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds))) or "no rows"
    messages.append(f"split {split!r} has no usable examples: {len(kinds)} skipped ({why})")
  return messages


def _reason_kind(reason: str) -> str:
  return re.split(r" \(|:| '| \d", reason, maxsplit=1)[0]


def _shards_written_before(output_dir: str) -> set:
  """Names of the shards earlier prep runs wrote here: those with a prep state file, and those
  the previous dataset_info.json lists (read leniently: it may be damaged)."""
  state_dir = os.path.join(output_dir, _STATE_DIR)
  names = {n[:-len(".json")] for n in os.listdir(state_dir) if n.endswith(".tfrecord.json")}
  previous = _load_state(os.path.join(output_dir, dataset_info.FILE_NAME))
  splits = previous.get("splits") if isinstance(previous, dict) else None
  for split in (splits.values() if isinstance(splits, dict) else []):
    files = split.get("files") if isinstance(split, dict) else None
    names.update(f for f in (files if isinstance(files, list) else []) if isinstance(f, str))
  return {n for n in names if _SHARD_NAME_RE.match(n)}


def _remove_shards(output_dir: str, names) -> None:
  """Removes shards (and their state) that an earlier prep run wrote and this one does not list,
  so no reader globbing the folder finds a stale one. Names come from _shards_written_before."""
  for name in sorted(names):
    for path in (os.path.join(output_dir, name),
                 os.path.join(output_dir, _STATE_DIR, name + ".json")):
      if os.path.isfile(path):
        os.remove(path)


def _shard_bytes(job, output_dir) -> int:
  """The size prep wrote (states of runs before sizes were recorded: the file's, as reused)."""
  return job["state"].get("num_bytes", os.path.getsize(os.path.join(output_dir, job["name"])))


def _dataset_info(jobs, plan, classes, sample_rate, skipped, extra_info, output_dir):
  splits, all_skipped, all_clipped = {}, [], []
  for split in list(plan) + [s for s in skipped if s not in plan]:
    split_jobs = [j for j in jobs if j["split"] == split]
    counts = np.sum([j["state"]["class_counts"] for j in split_jobs] or [[0] * len(classes)], axis=0)
    split_skips = skipped.get(split, []) + [s for j in split_jobs for s in j["state"]["skipped"]]
    all_skipped += [{"split": split, **s} for s in split_skips]
    all_clipped += [{"split": split, **c}
                    for j in split_jobs for c in j["state"].get("clipped", [])]
    splits[split] = {
        "num_examples": int(sum(j["state"]["num_examples"] for j in split_jobs)),
        "files": [j["name"] for j in split_jobs],
        # what each shard held when written: readers refuse a shard that differs
        "shards": {j["name"]: {"num_examples": j["state"]["num_examples"],
                               "num_bytes": _shard_bytes(j, output_dir)} for j in split_jobs},
        "hours": round(sum(j["state"]["seconds"] for j in split_jobs) / 3600.0, 4),
        "class_counts": {c["id"]: int(n) for c, n in zip(classes, counts)},
        "num_skipped": len(split_skips),
    }
  reasons = {}
  for s in all_skipped:
    reasons[_reason_kind(s["reason"])] = reasons.get(_reason_kind(s["reason"]), 0) + 1
  info = {"format": "tf_frontends/v1: audio=WAV PCM16 mono bytes, labels=int64 list, id=bytes",
          "sample_rate": int(sample_rate), "num_classes": len(classes), "classes": classes,
          "splits": splits, "skipped": all_skipped, "skipped_by_reason": reasons,
          # float sources beyond [-1, 1] (or resampling overshoot), hard-clipped to 16-bit PCM
          "clipped": all_clipped, "num_clipped_files": len(all_clipped)}
  info.update(extra_info or {})
  return info


def _split_arg(value: str, flag: str, default_split):
  """'eval=path' -> ('eval', 'path'); 'path' -> (default_split(path), 'path')."""
  split, sep, path = value.partition("=")
  if sep and _SPLIT_RE.match(split) and not os.path.exists(value):
    return split, path
  return default_split(value), value


def read_inputs(manifest_args, audioset_args, audax_args, classes, *, audio_dir=None,
                audax_sample_rate=16000):
  """Flags -> ({split: [Entry]}, {split: [skipped]}). Raises ValueError naming a bad argument."""
  entries, skipped = {}, {}

  def add(split, new_entries, new_skips):
    entries.setdefault(split, []).extend(new_entries)
    skipped.setdefault(split, []).extend(new_skips)

  for arg in manifest_args:
    split, path = _split_arg(arg, "--manifest", lambda p: None)
    by_split, skips = manifests.read_manifest(path, classes, default_split=split or "train")
    for s in dict.fromkeys([*by_split, *skips]):     # first appearance order, deterministic
      add(s, by_split.get(s, []), skips.get(s, []))
  if audioset_args:
    if not audio_dir:
      raise ValueError("--audioset_segments needs --audio_dir (the folder of downloaded clips)")
    index = manifests.index_audio_dir(audio_dir)
    for arg in audioset_args:
      split, path = _split_arg(arg, "--audioset_segments",
                               lambda p: "eval" if "eval" in os.path.basename(p) else "train")
      add(split, *manifests.read_audioset_segments(path, classes, index))
  for arg in audax_args:
    split, pattern = _split_arg(arg, "--audax_tfrecords", lambda p: "train")
    paths = sorted(glob.glob(pattern))
    if not paths:
      raise ValueError(f"--audax_tfrecords: {pattern!r} matches no file")
    for path in paths:
      add(split, *_read_audax_file(path, classes, audax_sample_rate))
  return entries, skipped


def _read_audax_file(path, classes, sample_rate):
  """One pass for labels and unreadable records; the audio is read again when converted."""
  new_entries, new_skips = [], []
  base = os.path.basename(path)
  try:
    compression = tfrecords.detect_compression(path)
  except ValueError as e:
    return [], [manifests.skipped(path, str(e).replace(path + ": ", ""))]
  for index, audio, labels, error in tfrecords.read_audax(path, compression):
    origin = f"{path}#{index}"
    if error is None and any(not 0 <= label < len(classes) for label in labels):
      error = f"unknown label {next(l for l in labels if not 0 <= l < len(classes))}"
    if error is None and not labels:
      error = "no labels"
    if error:
      new_skips.append(manifests.skipped(origin, error))
      continue
    rate = sample_rate if isinstance(audio, np.ndarray) else None
    new_entries.append(manifests.Entry(f"{base}#{index}", tuple(sorted(set(labels))),
                                       tfrecords.AudaxRecord(path, index, compression), origin, rate))
  return new_entries, new_skips


class _UsageError(ValueError):
  """A flag given wrongly (exit status 2)."""


def _run():
  if not FLAGS.output_dir:
    raise _UsageError("--output_dir is required")
  other_inputs = FLAGS.manifest or FLAGS.audioset_segments or FLAGS.audax_tfrecords
  if FLAGS.speech_commands and (other_inputs or FLAGS.label_map):
    raise _UsageError("--speech_commands brings its own splits and label map: give it without "
                      "--manifest, --audioset_segments, --audax_tfrecords, --label_map")
  if not FLAGS.speech_commands and not FLAGS.label_map:
    raise _UsageError("--label_map is required (AudioSet: class_labels_indices.csv)")
  if not (FLAGS.speech_commands or other_inputs):
    raise _UsageError("give at least one of --manifest, --audioset_segments, --audax_tfrecords, "
                      "or --speech_commands")
  for name in ("num_workers", "examples_per_shard", "sample_rate", "max_clip_seconds"):
    if not FLAGS[name].value > 0:
      raise _UsageError(f"--{name}={FLAGS[name].value} must be positive")
  if FLAGS.speech_commands:
    classes = speech_commands.classes()
    entries, skipped = speech_commands.read(FLAGS.speech_commands)
  else:
    classes = manifests.load_label_map(FLAGS.label_map)
    entries, skipped = read_inputs(FLAGS.manifest, FLAGS.audioset_segments, FLAGS.audax_tfrecords,
                                   classes, audio_dir=FLAGS.audio_dir,
                                   audax_sample_rate=FLAGS.audax_sample_rate)
  info = prepare(entries, classes, FLAGS.output_dir, skipped=skipped,
                 sample_rate=FLAGS.sample_rate, examples_per_shard=FLAGS.examples_per_shard,
                 num_workers=FLAGS.num_workers, seed=FLAGS.seed,
                 max_clip_seconds=FLAGS.max_clip_seconds)
  for split, s in info["splits"].items():
    logging.info("%s: %d examples in %d shard(s), %.2f h, %d skipped", split, s["num_examples"],
                 len(s["files"]), s["hours"], s["num_skipped"])
  for reason, n in sorted(info["skipped_by_reason"].items()):
    logging.info("skipped %d: %s", n, reason)
  logging.info("Wrote %s", os.path.join(FLAGS.output_dir, dataset_info.FILE_NAME))
  empty = empty_splits(info)
  if empty:
    raise ValueError("; ".join(empty) + f" (see 'skipped' in "
                     f"{os.path.join(FLAGS.output_dir, dataset_info.FILE_NAME)})")


def main(argv):
  """Runs data prep; a bad flag (exit 2) or bad input file (exit 1) is one line on stderr, the
  traceback only with --verbose."""
  if len(argv) > 1:
    print(f"data prep failed: unexpected arguments {argv[1:]} (flags are --name=value)",
          file=sys.stderr, flush=True)
    sys.exit(2)
  try:
    _run()
  except (ValueError, OSError) as e:
    if FLAGS.verbose:
      raise
    print(f"data prep failed: {e}", file=sys.stderr, flush=True)
    sys.exit(2 if isinstance(e, _UsageError) else 1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
