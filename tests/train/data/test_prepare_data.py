"""prepare_data end to end: shards + dataset_info, skip reasons, determinism, kill and rerun, audax."""
import glob
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from train.data import manifests, prepare_data, tfrecords

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LABELS = "index,id,display_name\n0,dog,Dog\n1,cat,Cat\n2,car,Car\n"


def _tone(freq_hz, rate, seconds, channels=1):
  t = np.arange(int(seconds * rate)) / rate
  x = 0.3 * np.sin(2 * np.pi * freq_hz * t)
  return np.stack([x] * channels, axis=1) if channels > 1 else x


def _make_inputs(tmp_path, num_good=6):
  """Good files in several formats / rates / channel counts, plus one of every bad kind."""
  audio = tmp_path / "audio"
  audio.mkdir()
  rows, expected = [], {}
  formats = [("wav", 16000, 1), ("flac", 44100, 2), ("ogg", 22050, 1), ("wav", 8000, 3)]
  for k in range(num_good):
    ext, rate, channels = formats[k % len(formats)]
    name = f"good{k}.{ext}"
    sf.write(audio / name, _tone(200 + 50 * k, rate, 0.5 + 0.1 * k, channels), rate)
    labels = ["Dog", "Cat", "Car"][:1 + k % 3]
    rows.append(f"audio/{name},\"{';'.join(labels)}\"")
    expected[f"audio/{name}"] = sorted({"Dog": 0, "Cat": 1, "Car": 2}[x] for x in labels)
  (audio / "empty.wav").write_bytes(b"")
  (audio / "text.wav").write_text("not audio at all " * 30)
  good = io.BytesIO()
  sf.write(good, _tone(300, 16000, 1.0), 16000, format="WAV")
  (audio / "truncated.wav").write_bytes(good.getvalue()[:20000])
  nan = _tone(300, 16000, 0.2)
  nan[100] = np.nan
  sf.write(audio / "nan.wav", nan, 16000, subtype="FLOAT")
  for name in ("empty.wav", "text.wav", "truncated.wav", "nan.wav"):
    rows.append(f"audio/{name},Dog")
  rows += ["audio/missing.wav,Dog", "audio/good0.wav,Horse", "audio/good0.wav,Cat"]
  manifest = tmp_path / "manifest.csv"
  manifest.write_text("path,labels\n" + "\n".join(rows) + "\n")
  label_map = tmp_path / "labels.csv"
  label_map.write_text(LABELS)
  return str(manifest), str(label_map), expected


def _read_split(output_dir, info, split):
  out = {}
  for name in info["splits"][split]["files"]:
    for record in tf.data.TFRecordDataset(os.path.join(output_dir, name)):
      parsed = tfrecords.parse_example(record)
      wav, rate = tf.audio.decode_wav(parsed["audio"])
      assert int(rate) == 16000 and wav.shape[1] == 1
      out[parsed["id"].numpy().decode()] = (wav.numpy()[:, 0], parsed["labels"].numpy().tolist())
  return out


def _prepare(manifest, label_map, output_dir, **kwargs):
  classes = manifests.load_label_map(label_map)
  entries, skipped = prepare_data.read_inputs([manifest], [], [], classes)
  kwargs = {"examples_per_shard": 2, "num_workers": 1, "quiet": True, **kwargs}
  return prepare_data.prepare(entries, classes, output_dir, skipped=skipped, **kwargs)


def _hashes(output_dir):
  return {os.path.basename(p): hashlib.sha1(open(p, "rb").read()).hexdigest()
          for p in sorted(glob.glob(os.path.join(output_dir, "*")))}


def test_prepare_writes_shards_info_and_counts_every_skip(tmp_path):
  manifest, label_map, expected = _make_inputs(tmp_path)
  out = str(tmp_path / "out")
  info = _prepare(manifest, label_map, out, num_workers=2)
  split = info["splits"]["train"]
  assert info["sample_rate"] == 16000 and [c["id"] for c in info["classes"]] == ["dog", "cat", "car"]
  assert split["num_examples"] == 6 and split["files"] == [
      f"train-0000{k}-of-00005.tfrecord" for k in range(5)]      # 10 candidates, 2 per shard
  assert sorted(os.listdir(out)) == sorted(split["files"] + ["dataset_info.json", ".prepare_state"])
  reasons = {s["file"]: s["reason"] for s in info["skipped"]}
  assert reasons["audio/empty.wav"] == "empty file"
  assert reasons["audio/text.wav"].startswith("not decodable audio")
  assert reasons["audio/truncated.wav"].startswith("truncated WAV")
  assert reasons["audio/nan.wav"] == "non-finite samples (NaN or inf)"
  assert reasons["audio/missing.wav"] == "missing file"
  assert [s["reason"] for s in info["skipped"] if s["file"] == "audio/good0.wav"] == [
      "unknown label 'Horse'", "duplicate id 'audio/good0.wav'"]
  assert len(info["skipped"]) == split["num_skipped"] == 7
  assert sum(info["skipped_by_reason"].values()) == 7 and info["skipped_by_reason"]["missing file"] == 1
  assert split["class_counts"] == {"dog": 6, "cat": 4, "car": 2}
  with open(os.path.join(out, "dataset_info.json")) as f:
    assert json.load(f) == info

  records = _read_split(out, info, "train")
  assert {k: v[1] for k, v in records.items()} == expected
  # content: the 44.1 kHz stereo FLAC, downmixed and resampled, equals a tone made at 16 kHz
  flac = records["audio/good1.flac"][0]
  reference = _tone(250, 16000, 0.6)
  assert abs(flac.size - reference.size) <= 1
  np.testing.assert_allclose(flac[800:-800], reference[800:flac.size - 800], atol=3e-3)


def test_output_is_deterministic_and_independent_of_workers(tmp_path):
  manifest, label_map, _ = _make_inputs(tmp_path)
  _prepare(manifest, label_map, str(tmp_path / "a"), num_workers=1)
  _prepare(manifest, label_map, str(tmp_path / "b"), num_workers=2)
  assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")


def test_a_killed_run_leaves_no_finished_looking_shard_and_a_rerun_completes(tmp_path, monkeypatch):
  manifest, label_map, _ = _make_inputs(tmp_path)
  clean = str(tmp_path / "clean")
  _prepare(manifest, label_map, clean)
  out = str(tmp_path / "out")
  real_writer, calls = tfrecords.write_shard, []

  def dies_during_third_shard(path, records):
    calls.append(path)
    if len(calls) == 3:
      with open(path + tfrecords.TMP_SUFFIX, "wb") as f:   # half a shard, then the "kill"
        f.write(b"\x00" * 10)
      raise KeyboardInterrupt
    real_writer(path, records)

  monkeypatch.setattr(tfrecords, "write_shard", dies_during_third_shard)
  with pytest.raises(KeyboardInterrupt):
    _prepare(manifest, label_map, out)
  names = sorted(os.listdir(out))
  assert "dataset_info.json" not in names and len([n for n in names if n.endswith(".tfrecord")]) == 2
  assert any(n.endswith(tfrecords.TMP_SUFFIX) for n in names)
  (tmp_path / "out" / "notes.tmp").write_text("the user's own")       # not ours: must survive

  monkeypatch.setattr(tfrecords, "write_shard", real_writer)
  converted = []
  real_convert = prepare_data._convert
  monkeypatch.setattr(prepare_data, "_convert", lambda t: converted.append(t) or real_convert(t))
  _prepare(manifest, label_map, out)
  assert (tmp_path / "out" / "notes.tmp").read_text() == "the user's own"
  os.remove(tmp_path / "out" / "notes.tmp")
  assert _hashes(out) == _hashes(clean)                    # partial gone, same bytes as a clean run
  assert len(converted) == 10 - 2 * 2                        # the two finished shards were reused


def test_ids_repeated_across_splits_are_skipped_in_later_splits(tmp_path):
  manifest, label_map, _ = _make_inputs(tmp_path, num_good=2)
  classes = manifests.load_label_map(label_map)
  entries, _ = prepare_data.read_inputs([manifest], [], [], classes)
  good = [e for e in entries["train"] if e.id.startswith("audio/good")]
  info = prepare_data.prepare({"train": good, "eval": good[:1]}, classes, str(tmp_path / "o"),
                              quiet=True)
  assert info["splits"]["eval"]["num_examples"] == 0 and info["splits"]["eval"]["files"] == []
  assert info["skipped"] == [{"split": "eval", "file": "audio/good0.wav",
                              "reason": "duplicate id 'audio/good0.wav'"}]


def _audax_example(audio_bytes, labels):
  feature = {"audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[audio_bytes])),
             "label": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
             "duration": tf.train.Feature(int64_list=tf.train.Int64List(value=[10]))}
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.mark.parametrize("compression", ["ZLIB", ""])
def test_audax_layout_records_are_converted(tmp_path, compression):
  flac = io.BytesIO()
  sf.write(flac, _tone(440, 16000, 0.5), 16000, format="FLAC", subtype="PCM_16")
  tensor = _tone(220, 16000, 0.25).astype(np.float32)
  path = str(tmp_path / "train.tfrec")
  with tf.io.TFRecordWriter(path, options=compression or None) as writer:
    writer.write(_audax_example(flac.getvalue(), [2, 0]))
    writer.write(_audax_example(tf.io.serialize_tensor(tensor).numpy(), [1]))   # audax "v2"
    writer.write(_audax_example(b"garbage bytes that are no audio", [1]))
    writer.write(_audax_example(flac.getvalue(), [7]))                         # no such class
  (tmp_path / "zz_not_a_record.tfrec").write_bytes(b"\x00\x01 definitely not a TFRecord")
  classes = manifests.load_label_map(_write(tmp_path / "labels.csv", LABELS))
  entries, skipped = prepare_data.read_inputs([], [], [f"train={tmp_path / '*.tfrec'}"], classes)
  # only references are held: the audio is streamed from the file again at conversion time
  assert [e.source for e in entries["train"]] == [tfrecords.AudaxRecord(path, i, compression)
                                                  for i in (0, 1)]
  info = prepare_data.prepare(entries, classes, str(tmp_path / "out"), skipped=skipped,
                              examples_per_shard=1, num_workers=2, quiet=True)
  records = _read_split(str(tmp_path / "out"), info, "train")
  assert list(records) == ["train.tfrec#0", "train.tfrec#1"]         # audax order is kept
  np.testing.assert_allclose(records["train.tfrec#0"][0], _tone(440, 16000, 0.5), atol=1e-4)
  assert records["train.tfrec#0"][1] == [0, 2]
  np.testing.assert_allclose(records["train.tfrec#1"][0], tensor, atol=1 / 32768)
  assert sorted(s["reason"] for s in info["skipped"]) == [
      "audio bytes are neither an audio file nor a float32 tensor",
      "not a TFRecord file (tried uncompressed, ZLIB and GZIP)", "unknown label 7"]


def _write(path, text):
  path.write_text(text)
  return str(path)


def _run_binary(*args, timeout=120):
  return subprocess.run([sys.executable, "-m", "train.data.prepare_data", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_binary_names_bad_flags_and_files(tmp_path):
  manifest, label_map, _ = _make_inputs(tmp_path, num_good=1)
  result = _run_binary(f"--manifest={manifest},eval={tmp_path / 'nope.csv'}",
                       f"--label_map={label_map}", f"--output_dir={tmp_path / 'o'}")
  assert result.returncode != 0
  assert f"manifest '{tmp_path / 'nope.csv'}' does not exist" in result.stderr
  assert not (tmp_path / "o").exists()


def test_bad_arguments_raise_naming_the_argument(tmp_path):
  manifest, label_map, _ = _make_inputs(tmp_path, num_good=1)
  classes = manifests.load_label_map(label_map)
  with pytest.raises(ValueError, match="--audioset_segments needs --audio_dir"):
    prepare_data.read_inputs([], ["eval_segments.csv"], [], classes)
  with pytest.raises(ValueError, match=r"--audax_tfrecords: '.*nothing\*' matches no file"):
    prepare_data.read_inputs([], [], [str(tmp_path / "nothing*")], classes)
  entries, _ = prepare_data.read_inputs([manifest], [], [], classes)
  with pytest.raises(ValueError, match="split name 'bad split'"):
    prepare_data.prepare({"bad split": entries["train"]}, classes, str(tmp_path / "o"), quiet=True)


@pytest.mark.slow
def test_binary_killed_with_sigkill_then_rerun_matches_a_clean_run(tmp_path):
  audio = tmp_path / "audio"
  audio.mkdir()
  rows = []
  for k in range(40):
    sf.write(audio / f"{k}.flac", _tone(100 + 10 * k, 48000, 3.0, channels=2), 48000)
    rows.append(f"audio/{k}.flac,Dog")
  manifest = _write(tmp_path / "m.csv", "path,labels\n" + "\n".join(rows) + "\n")
  label_map = _write(tmp_path / "labels.csv", LABELS)
  args = [f"--manifest={manifest}", f"--label_map={label_map}", "--examples_per_shard=4",
          "--num_workers=1"]
  out = tmp_path / "out"
  process = subprocess.Popen([sys.executable, "-m", "train.data.prepare_data", *args,
                              f"--output_dir={out}"], cwd=ROOT, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 90
  while time.monotonic() < deadline and len(glob.glob(str(out / "*.tfrecord"))) < 2:
    time.sleep(0.05)
  os.kill(process.pid, signal.SIGKILL)
  process.wait()
  finished = glob.glob(str(out / "*.tfrecord"))
  assert 2 <= len(finished) < 10 and not (out / "dataset_info.json").exists()
  for path in finished:                        # every shard with a final name is complete
    assert sum(1 for _ in tf.data.TFRecordDataset(path)) == 4
  rerun = _run_binary(*args, f"--output_dir={out}")
  assert rerun.returncode == 0 and "Reusing" in rerun.stderr
  _prepare(manifest, label_map, str(tmp_path / "clean"), examples_per_shard=4)   # in-process
  assert _hashes(out) == _hashes(tmp_path / "clean")


def test_float_sources_beyond_full_scale_are_counted_as_clipped(tmp_path, caplog):
  audio = tmp_path / "audio"
  audio.mkdir()
  loud = _tone(300, 16000, 0.5) / 0.3 * 1.5                  # peak 1.5
  loud[:100] = 0.0
  sf.write(audio / "loud.wav", loud, 16000, subtype="FLOAT")
  sf.write(audio / "fine.wav", _tone(300, 16000, 0.5), 16000, subtype="FLOAT")
  manifest = _write(tmp_path / "m.csv", "path,labels\naudio/loud.wav,Dog\naudio/fine.wav,Cat\n")
  label_map = _write(tmp_path / "labels.csv", LABELS)
  with caplog.at_level("WARNING"):
    info = _prepare(manifest, label_map, str(tmp_path / "out"), quiet=False)
  expected_samples = int(np.count_nonzero(np.abs(loud) > 1.0))
  assert info["num_clipped_files"] == 1
  assert info["clipped"] == [{"split": "train", "file": "audio/loud.wav",
                              "clipped_samples": expected_samples,
                              "peak": pytest.approx(1.5, abs=1e-3)}]
  assert "audio/loud.wav" in caplog.text and "clipped" in caplog.text
  records = _read_split(str(tmp_path / "out"), info, "train")
  assert np.max(np.abs(records["audio/loud.wav"][0])) <= 1.0


def test_binary_fails_on_a_split_without_usable_examples(tmp_path):
  _, label_map, _ = _make_inputs(tmp_path, num_good=2)
  rows = "path,labels,split\naudio/good0.wav,Dog,train\naudio/good1.flac,Cat,train\n" \
         "audio/empty.wav,Dog,eval\naudio/missing.wav,Dog,eval\n"
  manifest = _write(tmp_path / "split.csv", rows)
  result = _run_binary(f"--manifest={manifest}", f"--label_map={label_map}",
                       f"--output_dir={tmp_path / 'o'}", "--num_workers=1")
  assert result.returncode != 0
  assert "split 'eval' has no usable examples: 2 skipped" in result.stderr
  assert "empty file" in result.stderr and "missing file" in result.stderr


def test_a_reprep_killed_midway_leaves_the_folder_refused_until_a_run_completes(tmp_path,
                                                                               monkeypatch):
  from train.data import dataset_info
  manifest, label_map, _ = _make_inputs(tmp_path)
  out = str(tmp_path / "out")
  _prepare(manifest, label_map, out)
  assert not os.path.exists(dataset_info.marker_path(out))
  real_writer, calls = tfrecords.write_shard, []

  def dies_at_the_second_shard(path, records):
    calls.append(path)
    if len(calls) == 2:
      raise KeyboardInterrupt
    real_writer(path, records)

  monkeypatch.setattr(tfrecords, "write_shard", dies_at_the_second_shard)
  with pytest.raises(KeyboardInterrupt):                  # another shard size: new shards
    _prepare(manifest, label_map, out, examples_per_shard=3)
  assert os.path.exists(os.path.join(out, "dataset_info.json"))        # the old one, still there
  with pytest.raises(dataset_info.DataError, match=rf"{out} is incomplete: data prep was "
                                                   "interrupted"):
    dataset_info.read(out)
  monkeypatch.setattr(tfrecords, "write_shard", real_writer)
  info = _prepare(manifest, label_map, out, examples_per_shard=3)
  assert dataset_info.read(out) == info and not os.path.exists(dataset_info.marker_path(out))


def test_resharding_removes_the_shards_prep_wrote_before_and_nothing_else(tmp_path):
  manifest, label_map, _ = _make_inputs(tmp_path)
  out = tmp_path / "out"
  _prepare(manifest, label_map, str(out))                 # 5 shards of 2
  (out / "mine-00000-of-00001.tfrecord").write_bytes(b"the user's")   # looks like ours, is not
  (out / "notes.txt").write_text("the user's")
  info = _prepare(manifest, label_map, str(out), examples_per_shard=4)   # 3 shards
  files = info["splits"]["train"]["files"]
  assert files == [f"train-0000{k}-of-00003.tfrecord" for k in range(3)]
  assert sorted(glob.glob(str(out / "*.tfrecord"))) == sorted(
      [str(out / f) for f in files] + [str(out / "mine-00000-of-00001.tfrecord")])
  assert sorted(os.listdir(out / ".prepare_state")) == [f + ".json" for f in files]
  assert (out / "notes.txt").read_text() == "the user's"
  for name in files:                                       # what readers check shards against
    assert info["splits"]["train"]["shards"][name] == {
        "num_examples": sum(1 for _ in tf.data.TFRecordDataset(str(out / name))),
        "num_bytes": os.path.getsize(out / name)}


def test_absurd_rates_and_overlong_clips_are_skipped_and_counted(tmp_path):
  audio = tmp_path / "audio"
  audio.mkdir()
  ok = io.BytesIO()
  sf.write(ok, np.zeros(48000, np.float32), 16000, format="WAV", subtype="PCM_16")
  header = bytearray(ok.getvalue())
  header[24:32] = (1).to_bytes(4, "little") + (2).to_bytes(4, "little")      # 1 Hz, 2 bytes/s
  (audio / "one_hz.wav").write_bytes(bytes(header))
  sf.write(audio / "long.wav", _tone(300, 16000, 3.0), 16000)
  sf.write(audio / "fine.wav", _tone(300, 16000, 1.0), 16000)
  manifest = _write(tmp_path / "m.csv", "path,labels\naudio/one_hz.wav,Dog\naudio/long.wav,Cat\n"
                    "audio/fine.wav,Car\n")
  label_map = _write(tmp_path / "labels.csv", LABELS)
  info = _prepare(manifest, label_map, str(tmp_path / "out"), max_clip_seconds=2.0)
  reasons = {s["file"]: s["reason"] for s in info["skipped"]}
  assert reasons == {
      "audio/one_hz.wav": "implausible sample rate 1 Hz (accepted 1000-768000 Hz)",
      "audio/long.wav": "too long: 3.0 s (48000 frames at 16000 Hz) exceeds --max_clip_seconds=2"}
  assert info["skipped_by_reason"] == {"implausible sample rate": 1, "too long": 1}
  assert info["splits"]["train"]["num_examples"] == 1


def _own_lines(stderr):
  """stderr without TensorFlow's C++ log lines (a machine without a GPU logs cuInit's failure)."""
  return [line for line in stderr.splitlines()
          if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] ", line)]


def test_binary_errors_are_one_line_naming_the_file(tmp_path):
  manifest, _, _ = _make_inputs(tmp_path, num_good=1)
  labels = _write(tmp_path / "labels.csv", "index,id,display_name\n0,dog,Dog\n1,hound,Dog\n")
  # one run (a TensorFlow import each): old prep printed ~50 lines of flag help here
  bad_file = _run_binary(f"--manifest={manifest}", f"--label_map={labels}",
                         f"--output_dir={tmp_path / 'o'}")
  assert (bad_file.returncode, _own_lines(bad_file.stderr)) == (
      1, [f"data prep failed: label map {labels}: line 3: duplicate class display names: 'Dog' "
          "is also on line 2"])
  assert not (tmp_path / "o").exists()


def test_a_rerun_rewrites_a_truncated_shard_instead_of_reusing_it(tmp_path, monkeypatch):
  manifest, label_map, _ = _make_inputs(tmp_path)
  out = tmp_path / "out"
  _prepare(manifest, label_map, str(out))
  before = _hashes(out)
  shard = out / "train-00001-of-00005.tfrecord"
  shard.write_bytes(shard.read_bytes()[:100])
  converted = []
  real_convert = prepare_data._convert
  monkeypatch.setattr(prepare_data, "_convert", lambda t: converted.append(t) or real_convert(t))
  _prepare(manifest, label_map, str(out))
  assert _hashes(out) == before and len(converted) == 2        # that shard's two entries only
