"""manifests: label maps, CSV manifests and AudioSet segment CSVs; rows are skipped, never fatal."""
import json

import pytest

from train.data import manifests

AUDIOSET_LABELS = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/05zppz,"Male speech, man speaking"
2,/m/04rlf,"Music"
"""
SEGMENTS = """# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=5, num_segs=5, num_unique_labels=3, num_positive_labels=7
# YTID, start_seconds, end_seconds, positive_labels
--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"
-0RWZT-miFs, 420.000, 430.000, "/m/04rlf"
-1LrH01Ei1w, 10.000, 20.000, "/m/09x0r"
zzzzzzzzzzz, 10.000, 20.000, "/m/09x0r,/m/99zzz"
-1nilez17Dg, 0.000, 10.000, "/m/04rlf"
--PJHxphWEs, 30.000, 40.000, "/m/04rlf"
abcdefghijk, 1.500, 11.500, "/m/04rlf"
"""


@pytest.fixture
def classes(tmp_path):
  path = tmp_path / "class_labels_indices.csv"
  path.write_text(AUDIOSET_LABELS)
  return manifests.load_label_map(str(path))


def test_audioset_label_csv_is_a_label_map(classes):
  assert classes == [
      {"index": 0, "id": "/m/09x0r", "display_name": "Speech"},
      {"index": 1, "id": "/m/05zppz", "display_name": "Male speech, man speaking"},
      {"index": 2, "id": "/m/04rlf", "display_name": "Music"}]


def test_json_label_map_list_or_dataset_info(tmp_path, classes):
  as_list, as_info = tmp_path / "a.json", tmp_path / "b.json"
  as_list.write_text(json.dumps(list(reversed(classes))))
  as_info.write_text(json.dumps({"sample_rate": 16000, "classes": classes}))
  assert manifests.load_label_map(str(as_list)) == classes
  assert manifests.load_label_map(str(as_info)) == classes


@pytest.mark.parametrize("text,message", [
    ("index,name\n0,a\n", "needs 'index' and 'id'"),
    ("index,id,display_name\n0,a,A\n2,b,B\n", "indices must be 0..1"),
    ("index,id,display_name\n0,a,A\n1,a,B\n", "duplicate class ids"),
    ("index,id,display_name\nx,a,A\n", "not an integer"),
])
def test_bad_label_maps_raise_naming_the_file(tmp_path, text, message):
  path = tmp_path / "labels.csv"
  path.write_text(text)
  with pytest.raises(ValueError, match=message) as error:
    manifests.load_label_map(str(path))
  assert str(path) in str(error.value)
  with pytest.raises(ValueError, match="does not exist"):
    manifests.load_label_map(str(tmp_path / "missing.csv"))


def test_label_field_separators_and_display_names(classes):
  lookup = manifests.LabelLookup(classes)
  assert lookup.parse_field("/m/09x0r;/m/04rlf") == ((0, 2), [])
  assert lookup.parse_field("/m/04rlf,/m/09x0r") == ((0, 2), [])
  assert lookup.parse_field("Male speech, man speaking") == ((1,), [])   # one name with a comma
  assert lookup.parse_field("Male speech, man speaking;Music") == ((1, 2), [])
  assert lookup.parse_field("Speech; Speech") == ((0,), [])
  assert lookup.parse_field("Speech;Barking") == ((0,), ["Barking"])


def test_manifest_rows_are_parsed_or_skipped_with_reasons(tmp_path, classes):
  for name in ("a.wav", "b.flac", "c.ogg", "d.wav"):
    (tmp_path / name).write_bytes(b"x")
  manifest = tmp_path / "m.csv"
  manifest.write_text(
      "path,labels,split\n"
      "# a comment line\n"
      "a.wav,\"/m/09x0r,/m/04rlf\",train\n"
      "b.flac,Music,eval\n"
      "c.ogg,Barking,train\n"          # unknown label
      "a.wav,Speech,train\n"           # duplicate id (the path)
      "gone.wav,Speech,eval\n"         # missing file
      "d.wav,,train\n"                 # no labels
      f"{tmp_path / 'd.wav'},Speech\n"  # absolute path, default split
  )
  entries, skipped = manifests.read_manifest(str(manifest), classes)
  assert [(e.id, e.labels) for e in entries["train"]] == [("a.wav", (0, 2)),
                                                           (str(tmp_path / "d.wav"), (0,))]
  assert entries["train"][0].source == str(tmp_path / "a.wav")
  assert [(e.id, e.labels) for e in entries["eval"]] == [("b.flac", (2,))]
  assert skipped["train"] == [{"file": "c.ogg", "reason": "unknown label 'Barking'"},
                              {"file": "a.wav", "reason": "duplicate id 'a.wav'"},
                              {"file": "d.wav", "reason": "no labels"}]
  assert skipped["eval"] == [{"file": "gone.wav", "reason": "missing file"}]


def test_manifest_needs_path_and_labels_columns(tmp_path, classes):
  manifest = tmp_path / "m.csv"
  manifest.write_text("file,label\na.wav,Speech\n")
  with pytest.raises(ValueError, match=r"m\.csv: header must name 'path' and 'labels'"):
    manifests.read_manifest(str(manifest), classes)


def test_audioset_segments_with_every_name_pattern(tmp_path, classes):
  clips = tmp_path / "clips"
  (clips / "sub").mkdir(parents=True)
  (clips / "--PJHxphWEs.wav").write_bytes(b"x")                        # YTID
  (clips / "sub" / "Y-0RWZT-miFs_420.000_430.000.flac").write_bytes(b"x")  # YYTID_start_end
  (clips / "-1LrH01Ei1w_10.wav").write_bytes(b"x")                     # YTID_start (int)
  (clips / "abcdefghijk_1500.ogg").write_bytes(b"x")                   # YTID_start (ms)
  (clips / "notes.txt").write_bytes(b"x")
  segments = tmp_path / "eval_segments.csv"
  segments.write_text(SEGMENTS)
  entries, skipped = manifests.read_audioset_segments(
      str(segments), classes, manifests.index_audio_dir(str(clips)))
  assert [(e.id, e.labels, e.source) for e in entries] == [
      ("--PJHxphWEs", (0, 1), str(clips / "--PJHxphWEs.wav")),
      ("-0RWZT-miFs", (2,), str(clips / "sub" / "Y-0RWZT-miFs_420.000_430.000.flac")),
      ("-1LrH01Ei1w", (0,), str(clips / "-1LrH01Ei1w_10.wav")),
      ("abcdefghijk", (2,), str(clips / "abcdefghijk_1500.ogg"))]
  assert skipped == [
      {"file": "zzzzzzzzzzz", "reason": "unknown label '/m/99zzz'"},
      {"file": "-1nilez17Dg", "reason": "missing file (no downloaded clip for this YTID)"},
      {"file": "--PJHxphWEs", "reason": "duplicate id '--PJHxphWEs'"}]


def test_audio_dir_must_exist(tmp_path):
  with pytest.raises(ValueError, match="--audio_dir"):
    manifests.index_audio_dir(str(tmp_path / "nope"))


def test_a_stray_quote_is_an_error_naming_the_line_not_swallowed_rows(tmp_path, classes):
  rows = ['a.wav,Speech', '"b.wav,Music'] + [f"c{k}.wav,Music" for k in range(17)]
  path = tmp_path / "m.csv"
  path.write_text("path,labels\n" + "\n".join(rows) + "\n")
  with pytest.raises(ValueError, match=r"line 3: a quote opened on this line runs to line 20"
                                       r".*stray") as error:
    manifests.read_manifest(str(path), classes)
  assert str(path) in str(error.value)


@pytest.mark.parametrize("what,text,hint", [
    ("manifest", "path,labels,id\na.wav,Speech,a\nb.wav,Male speech, man speaking,b\n",
     "unquoted comma in a label"),
    ("label map", "index,mid,display_name\n0,/m/a,Speech\n1,/m/b,Male speech, man speaking\n",
     "unquoted comma in a display name"),
])
def test_an_extra_column_names_the_line_and_the_likely_comma(tmp_path, classes, what, text, hint):
  path = tmp_path / "file.csv"
  path.write_text(text)
  read = {"manifest": lambda: manifests.read_manifest(str(path), classes),
          "label map": lambda: manifests.load_label_map(str(path))}[what]
  with pytest.raises(ValueError, match=rf"line 3 has 4 columns, expected 3 \({hint}") as error:
    read()
  assert str(path) in str(error.value) and what in str(error.value)


def test_audioset_segments_with_unquoted_labels_name_the_line(tmp_path, classes):
  path = tmp_path / "segments.csv"
  path.write_text("# YTID, start_seconds, end_seconds, positive_labels\n"
                  '--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\n'
                  "-0RWZT-miFs, 420.000, 430.000, /m/09x0r,/m/04rlf\n")
  with pytest.raises(ValueError, match="line 3 has 5 columns, expected 4 \\(unquoted comma"):
    manifests.read_audioset_segments(str(path), classes, {})


def test_comment_lines_keep_the_line_numbers(tmp_path, classes):
  path = tmp_path / "m.csv"
  path.write_text("# made by hand\npath,labels\n# a comment\nx.wav,Speech,Music\n")
  with pytest.raises(ValueError, match="line 4 has 3 columns"):
    manifests.read_manifest(str(path), classes)


@pytest.mark.parametrize("text,where,message", [
    ("index,id,display_name\n0,dog,Dog\n1,hound,Dog\n", "line 3",
     r"duplicate class display names: 'Dog' is also on line 2"),
    ("index,id,display_name\n0,dog,Dog\n1,cat,Cat\tty\n", "line 3",
     r"display_name 'Cat\\tty' holds the control character '\\t'"),
    ("index,id,display_name\n0,dog,cat\n1,cat,Cat\n", "line 2",
     r"display_name 'cat' is the id of line 3, so a manifest label 'cat' would name two"),
])
def test_class_names_must_name_one_class_and_hold_no_control_character(tmp_path, text, where,
                                                                         message):
  path = tmp_path / "labels.csv"
  path.write_text(text)
  with pytest.raises(ValueError, match=message) as error:
    manifests.load_label_map(str(path))
  assert str(error.value).startswith(f"label map {path}: {where}: ")


def test_json_label_maps_are_checked_naming_the_entry(tmp_path):
  path = tmp_path / "labels.json"
  path.write_text(json.dumps([{"index": 0, "id": "a", "display_name": "A"},
                              {"index": 1, "id": "b", "display_name": "A"}]))
  with pytest.raises(ValueError, match=rf"label map {path}: entry 1: duplicate class display"):
    manifests.load_label_map(str(path))
  path.write_text(json.dumps([{"index": 0, "id": "a", "display_name": "A"},
                              {"index": 1, "id": "b", "display_name": "Dog\nbark"}]))
  with pytest.raises(ValueError, match=rf"label map {path}: entry 1: display_name 'Dog\\nbark' "
                                       r"holds the control character '\\n'"):
    manifests.load_label_map(str(path))
  path.write_text("[{not json")
  with pytest.raises(ValueError, match=rf"label map {path} is not JSON"):
    manifests.load_label_map(str(path))


def test_a_validly_quoted_newline_in_a_path_is_a_file_name(tmp_path, classes):
  (tmp_path / "two\nlines.wav").write_bytes(b"RIFF")
  path = tmp_path / "m.csv"
  path.write_text('path,labels\n"two\nlines.wav",Speech\nnext.wav,Music\n')
  entries, skips = manifests.read_manifest(str(path), classes)
  assert [e.source for e in entries["train"]] == [str(tmp_path / "two\nlines.wav")]
  assert skips["train"] == [{"file": "next.wav", "reason": "missing file"}]   # line 4 still read


@pytest.mark.parametrize("text,message", [
    ('path,labels\na.wav,"Speech\nb.wav,Music"\n', r"line 2: a quote opened on this line runs "
                                                    r"to line 3"),     # closed, but not in a path
    ('path,labels\na.wav,Speech\n"b.wav,Music\n', r"line 3: a quote opened on this line runs"),
    ('path,labels\n"a.wav"x,Speech\n', r"line 2: .*expected after"),
    ("path,labels\na.wav,Sp\xe9ech\n", r"line 2: not UTF-8 text"),
])
def test_quotes_the_csv_module_rejects_or_that_join_rows_name_the_line(tmp_path, classes, text,
                                                                       message):
  path = tmp_path / "m.csv"
  path.write_bytes(text.encode("latin-1"))
  with pytest.raises(ValueError, match=message) as error:
    manifests.read_manifest(str(path), classes)
  assert str(path) in str(error.value)


def test_a_file_name_with_a_leading_space_is_found_and_padding_is_still_dropped(tmp_path, classes):
  (tmp_path / " lead.wav").write_bytes(b"RIFF")
  (tmp_path / "pad.wav").write_bytes(b"RIFF")
  path = tmp_path / "m.csv"
  path.write_text("path,labels\n lead.wav,Speech\n pad.wav ,Music\n")
  entries, skips = manifests.read_manifest(str(path), classes)
  assert [(e.id, e.source) for e in entries["train"]] == [
      (" lead.wav", str(tmp_path / " lead.wav")), ("pad.wav", str(tmp_path / "pad.wav"))]
  assert skips == {"train": []}
