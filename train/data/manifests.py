"""What data prep reads before touching audio: label maps, CSV manifests, AudioSet segment CSVs.

Label map: a CSV with a header naming `index`, `id` (or AudioSet's `mid`) and `display_name` columns
(AudioSet's class_labels_indices.csv works as is), or JSON: a list of {"index", "id", "display_name"}
objects or any object with such a list under "classes" (a dataset_info.json works). Ids and display
names are unique, hold no control character (newline, tab, ...), and no display name is another
class's id, so that every label names one class.

Manifest CSV: header `path,labels` plus optional `id` and `split` columns. Paths are relative to the
manifest's folder unless absolute; spaces around a path are dropped unless a file has the name with
them; a quoted path may hold a newline (the csv module's rules; a newline anywhere else is taken for
a stray quote). In `labels`, `;` separates labels; a field without `;` is split
on `,` (quote it: `"a,b"`). A field equal to one display name (commas and all) is that one label.
Each label is looked up as a class id, then as a display name. The id defaults to the path.

AudioSet segment CSVs (balanced_train_segments.csv, ...): `# ...` comment lines, then
`YTID, start_seconds, end_seconds, "mid1,mid2"`. A clip is found in --audio_dir (searched recursively)
under any of these stems, with any audio extension (.wav .flac .ogg .mp3 ...):
  YTID   YYTID   YTID_<start>   YTID_<start>_<end>   (start/end as in the CSV, e.g. 30.000, or as
  integers, e.g. 30, or in milliseconds, e.g. 30000)
The example id is the YTID.

Problems with single rows never raise: they come back as skipped {"file", "reason"} records.
Problems with a whole file (missing, wrong columns) and CSV syntax errors that would make rows
vanish or shift (a stray quote swallowing the lines after it, an unquoted comma giving a row an
extra column) raise ValueError naming the file and line.
"""
import csv
import dataclasses
import json
import os
import unicodedata
from typing import Optional, Sequence

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au")


@dataclasses.dataclass
class Entry:
  """One clip to convert. `source` is a path, encoded bytes, or a float array at `rate`."""
  id: str
  labels: tuple
  source: object
  origin: str                    # what a person would look for: a path, or "shard.tfrecord#17"
  rate: Optional[int] = None     # only for raw float arrays
  events: tuple = ()             # strong labels: ((class index, start_s, end_s), ...)


def skipped(origin: str, reason: str) -> dict:
  return {"file": origin, "reason": reason}


def _require_file(path: str, what: str) -> None:
  if not path or not os.path.isfile(path):
    raise ValueError(f"{what} {path!r} does not exist or is not a file")


def _open_text(path: str):
  """A CSV file as text for the csv module (a UTF-8 byte-order mark, as spreadsheets write, is
  not part of the first column's name)."""
  return open(path, newline="", encoding="utf-8-sig")


def _stray_quote(path, what, first, last):
  return ValueError(f"{what} {path}: line {first}: a quote opened on this line runs to line "
                    f"{last}, so lines {first}-{last} would be read as one row (a stray '\"'?)")


def _first_non_utf8_line(path: str) -> int:
  with open(path, "rb") as f:
    for line_no, line in enumerate(f, 1):
      try:
        line.decode("utf-8")
      except UnicodeDecodeError:
        return line_no
  return 0


def _csv_rows(f, path: str, what: str, multiline_columns=()):
  """Yields (line number, fields) of each non-empty CSV record; `#` comment lines are skipped.

  The csv module's rules (strict): a quoted field may hold newlines, but only the columns
  numbered in `multiline_columns` (file names) may: anywhere else a record that spans lines is
  a quote opened and closed lines later, which would silently join those lines into one field,
  and raises ValueError naming the line. So do a quote never closed, text after a closing
  quote, and bytes that are not UTF-8. `multiline_columns` may be filled in by the caller once
  it has read the header row. The first field keeps the spaces it starts with (the csv module's
  skipinitialspace, which quoted fields after ", " need, would drop them).
  """
  texts = []                     # the lines of the record being read (the reader reads no further)

  def lines():
    for line in f:
      line = "\n" if line.lstrip().startswith("#") else line              # keeps numbering
      texts.append(line)
      yield line

  reader = csv.reader(lines(), skipinitialspace=True, strict=True)
  last = 0
  while True:
    texts.clear()
    first = last + 1
    try:
      row = next(reader, None)
    except csv.Error as e:
      if "unexpected end of data" in str(e):
        raise _stray_quote(path, what, first, reader.line_num) from None
      raise ValueError(f"{what} {path}: line {reader.line_num}: {e} (a stray '\"'? quote a "
                       'whole field: "a, b")') from None
    except UnicodeDecodeError as e:
      raise ValueError(f"{what} {path}: line {_first_non_utf8_line(path)}: not UTF-8 text "
                       f"({e.reason}); save it as UTF-8") from None
    if row is None:
      return
    last = reader.line_num
    if not row:
      continue
    if last > first and any("\n" in field or "\r" in field for k, field in enumerate(row)
                            if k not in multiline_columns):
      raise _stray_quote(path, what, first, last)
    text = next((t for t in texts if t.strip()), "")
    unquoted = text.lstrip(" ")
    if not unquoted.startswith('"'):
      # skipinitialspace drops the spaces a file name may begin with: give them back to the
      # first field (its readers strip what is only padding)
      row[0] = text[:len(text) - len(unquoted)] + row[0]
    yield first, row


def _check_columns(row, header, line_no, path, what, hint):
  if len(row) > len(header):
    raise ValueError(f"{what} {path}: line {line_no} has {len(row)} columns, expected "
                     f"{len(header)} ({hint})")


def _dict_rows(f, path: str, what: str, hint: str, multiline=()):
  """(header, [(line number, {column: value})]) of a CSV with a header row; newlines are allowed
  in the (quoted) fields of the columns named in `multiline`."""
  multiline_columns = set()
  rows = _csv_rows(f, path, what, multiline_columns)
  header = next(rows, (0, None))[1]
  if header is None:
    return None, []
  header = [name.strip() for name in header]
  multiline_columns.update(k for k, name in enumerate(header) if name in multiline)
  records = []
  for line_no, row in rows:
    _check_columns(row, header, line_no, path, what, hint)
    records.append((line_no, dict(zip(header, row + [None] * (len(header) - len(row))))))
  return header, records


def load_label_map(path: str) -> list:
  """-> [{"index", "id", "display_name"}, ...] sorted by index, indices 0..C-1; names checked by
  check_class_names (errors name the file and line, or the entry of a JSON list)."""
  _require_file(path, "label map")
  if path.lower().endswith(".json"):
    with open(path, encoding="utf-8") as f:
      try:
        data = json.load(f)
      except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"label map {path} is not JSON ({e})") from None
    rows = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(rows, list):
      raise ValueError(f"label map {path}: expected a list of classes or an object with 'classes'")
    located = [(f"entry {k}", row) for k, row in enumerate(rows)]
  else:
    with _open_text(path) as f:
      located = [(f"line {line_no}", row) for line_no, row in _dict_rows(
          f, path, "label map", 'unquoted comma in a display name? quote it: "a, b"')[1]]
  classes, where = [], {}
  for location, row in located:
    if not isinstance(row, dict):
      raise ValueError(f"label map {path}: entries must be objects/rows, got {row!r}")
    class_id = row.get("id", row.get("mid"))
    if "index" not in row or class_id is None:
      raise ValueError(f"label map {path}: needs 'index' and 'id' (or 'mid') columns, got {sorted(row)}")
    try:
      index = int(row["index"])
    except (TypeError, ValueError):
      raise ValueError(f"label map {path}: {location}: index {row['index']!r} is not an "
                       "integer") from None
    classes.append({"index": index, "id": str(class_id).strip(),
                    "display_name": str(row.get("display_name") or class_id).strip()})
    where[id(classes[-1])] = location
  classes.sort(key=lambda c: c["index"])
  if [c["index"] for c in classes] != list(range(len(classes))) or not classes:
    raise ValueError(f"label map {path}: indices must be 0..{len(classes) - 1}, each once")
  check_class_names(classes, f"label map {path}", [where[id(c)] for c in classes])
  return classes


def _control_character(text: str) -> Optional[str]:
  """The first control or line-separator character of text (repr), or None."""
  bad = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Zl", "Zp")), None)
  return None if bad is None else repr(bad)


def check_class_names(classes: Sequence[dict], source: str, locations: Sequence[str]) -> None:
  """ValueError naming `source` and the location (e.g. "line 4") of the first class whose id or
  display name is empty, holds a control character (a newline breaks label files and the
  exported class-name CSV), repeats another class's, or whose display name is another class's
  id: a manifest label must name exactly one class."""
  ids, names = {}, {}
  for c, location in zip(classes, locations):
    for key in ("id", "display_name"):
      value = c[key]
      if not isinstance(value, str) or not value:
        raise ValueError(f"{source}: {location}: {key} {value!r} must be a non-empty string")
      bad = _control_character(value)
      if bad:
        raise ValueError(f"{source}: {location}: {key} {value!r} holds the control character "
                         f"{bad}")
    for key, plural, seen in (("id", "ids", ids), ("display_name", "display names", names)):
      if c[key] in seen:
        raise ValueError(f"{source}: {location}: duplicate class {plural}: {c[key]!r} is also "
                         f"on {seen[c[key]]}")
      seen[c[key]] = location
  for c, location in zip(classes, locations):
    other = ids.get(c["display_name"])
    if other is not None and other != location:
      raise ValueError(f"{source}: {location}: display_name {c['display_name']!r} is the id of "
                       f"{other}, so a manifest label {c['display_name']!r} would name two "
                       "classes")


class LabelLookup:
  """Label token -> class index, by id first, then display name."""

  def __init__(self, classes: Sequence[dict]):
    self.by_id = {c["id"]: c["index"] for c in classes}
    self.by_name = {}
    for c in classes:
      self.by_name.setdefault(c["display_name"], c["index"])

  def __call__(self, token: str) -> Optional[int]:
    token = token.strip()
    return self.by_id.get(token, self.by_name.get(token))

  def parse_field(self, field: str):
    """'a;b' or 'a,b' -> (sorted unique indices, unknown tokens)."""
    field = (field or "").strip()
    if field in self.by_name and field not in self.by_id:
      return (self.by_name[field],), []
    tokens = [t.strip() for t in field.split(";" if ";" in field else ",") if t.strip()]
    found = [(t, self(t)) for t in tokens]
    unknown = [t for t, i in found if i is None]
    return tuple(sorted({i for _, i in found if i is not None})), unknown


def _label_entry(lookup, field, origin):
  """-> (labels, None) or (None, skipped record)."""
  labels, unknown = lookup.parse_field(field)
  if unknown:
    return None, skipped(origin, f"unknown label {unknown[0]!r}")
  if not labels:
    return None, skipped(origin, "no labels")
  return labels, None


def _file_name(raw: str, base: str) -> str:
  """The path as written when a file has that name (spaces at either end included), else
  stripped: spreadsheets pad fields, file systems allow names that begin with a space."""
  if raw.strip() and raw != raw.strip() and os.path.isfile(os.path.join(base, raw)):
    return raw
  return raw.strip()


def read_manifest(path: str, classes: Sequence[dict], default_split: str = "train"):
  """-> ({split: [Entry]}, {split: [skipped]}) in file order. Duplicate ids keep the first."""
  _require_file(path, "manifest")
  lookup = LabelLookup(classes)
  base = os.path.dirname(os.path.abspath(path))
  entries, skips, seen = {}, {}, set()
  with _open_text(path) as f:
    fieldnames, rows = _dict_rows(f, path, "manifest",
                                  'unquoted comma in a label? quote the field: "a,b"',
                                  multiline=("path",))
    if not fieldnames or not {"path", "labels"} <= set(fieldnames):
      raise ValueError(f"manifest {path}: header must name 'path' and 'labels' columns, "
                       f"got {fieldnames}")
    for line_no, row in rows:
      split = (row.get("split") or default_split).strip()
      rel = _file_name(row.get("path") or "", base)
      origin = rel or f"{path}:{line_no}"
      skips.setdefault(split, [])
      if not rel:
        skips[split].append(skipped(origin, "empty path"))
        continue
      full = os.path.join(base, rel)          # an absolute rel replaces base
      labels, skip = _label_entry(lookup, row.get("labels"), origin)
      example_id = (row.get("id") or "").strip() or rel
      if skip is None and example_id in seen:
        skip = skipped(origin, f"duplicate id {example_id!r}")
      if skip is None and not os.path.isfile(full):
        skip = skipped(origin, "missing file")
      if skip:
        skips[split].append(skip)
        continue
      seen.add(example_id)
      entries.setdefault(split, []).append(Entry(example_id, labels, full, origin))
  return entries, skips


def index_audio_dir(audio_dir: str) -> dict:
  """{file stem: path} for every audio file under audio_dir (first in sorted walk order wins)."""
  if not os.path.isdir(audio_dir):
    raise ValueError(f"--audio_dir {audio_dir!r} is not a folder")
  index = {}
  for root, dirs, files in os.walk(audio_dir):
    dirs.sort()
    for name in sorted(files):
      stem, ext = os.path.splitext(name)
      if ext.lower() in AUDIO_EXTENSIONS:
        index.setdefault(stem, os.path.join(root, name))
  return index


def _candidate_stems(ytid: str, start: str, end: str):
  starts, ends = [start], [end]
  for value, out in ((start, starts), (end, ends)):
    try:
      seconds = float(value)
      out += [f"{seconds:.3f}", f"{seconds:g}", str(int(seconds)), str(int(round(seconds * 1000)))]
    except ValueError:
      pass
  stems = [ytid, "Y" + ytid]
  for s in dict.fromkeys(starts):
    stems.append(f"{ytid}_{s}")
    stems += [f"{ytid}_{s}_{e}" for e in dict.fromkeys(ends)]
    stems += [f"Y{ytid}_{s}_{e}" for e in dict.fromkeys(ends)]
  return stems


def read_audioset_segments(path: str, classes: Sequence[dict], audio_index: dict):
  """AudioSet segment CSV -> ([Entry], [skipped]) in file order."""
  _require_file(path, "AudioSet segment CSV")
  lookup = LabelLookup(classes)
  entries, skips, seen = [], [], set()
  with _open_text(path) as f:
    for line_no, row in _csv_rows(f, path, "AudioSet segment CSV"):
      _check_columns(row, range(4), line_no, path, "AudioSet segment CSV",
                     'unquoted comma in the labels? quote them: "/m/a,/m/b"')
      if len(row) < 4:
        skips.append(skipped(f"{path}:{line_no}: {','.join(row)[:60]}",
                             "malformed row (need 4 fields)"))
        continue
      ytid, start, end, field = (x.strip() for x in row[:4])
      labels, skip = _label_entry(lookup, field, ytid)
      if skip is None and ytid in seen:
        skip = skipped(ytid, f"duplicate id {ytid!r}")
      if skip is None:
        clip = next((audio_index[s] for s in _candidate_stems(ytid, start, end) if s in audio_index),
                    None)
        if clip is None:
          skip = skipped(ytid, "missing file (no downloaded clip for this YTID)")
      if skip:
        skips.append(skip)
        continue
      seen.add(ytid)
      entries.append(Entry(ytid, labels, clip, clip))
  return entries, skips
