"""Issue 25, export side: TFLite conversion's temporary SavedModels live in export's staging
folder (removed with it, also by the next export after a kill), and a full disk is one line.
Each test failed on ec0ace3 (/tmp/tflite_signature_* left by killed exports; a traceback)."""
import os
import subprocess
import sys
import textwrap
import types

import pytest

import tf_frontends
from export import layout
from export import main as export_main
from export import tflite
from tests.harness import REPO


def test_conversion_temporaries_go_where_asked_and_are_removed(tmp_path, monkeypatch):
  staging = tmp_path / "staging"
  staging.mkdir()
  written = []
  real_write = tflite.write_signature_savedmodel
  monkeypatch.setattr(tflite, "write_signature_savedmodel",
                      lambda fn, n, path, **kw: written.append(path) or real_write(fn, n, path,
                                                                                   **kw))
  frontend = tf_frontends.get("mel", n_filters=8)
  tflite.convert(lambda w: {"features": frontend(w)}, 3200, ["float"], tmp_parent=str(staging))
  assert written and all(p.startswith(str(staging) + os.sep) for p in written)
  assert os.listdir(staging) == []


def test_export_converts_inside_its_staging_folder(tmp_path, monkeypatch):
  seen = {}

  def stop(outputs_fn, num_samples, quantizations, **kwargs):
    seen.update(kwargs)
    raise RuntimeError("converted")
  monkeypatch.setattr(tflite, "convert", stop)
  model = types.SimpleNamespace(frontend=types.SimpleNamespace(name="mel"))
  with pytest.raises(RuntimeError, match="converted"):
    export_main._write_tflite(model, 3200, ["float"], None, layout.ExportLayout(str(tmp_path)),
                              {}, {}, {})
  assert seen["tmp_parent"] == str(tmp_path)


_FULL_DISK = textwrap.dedent("""
    import sys
    import tensorflow as tf
    from export import main
    def full(*args, **kwargs):
      raise tf.errors.ResourceExhaustedError(
          None, None, "/out/tflite/x; No space left on device\\n\\tin C++ context")
    main.export = full
    sys.argv = ["export", "--workdir=/w", "--output_dir=/out"] + sys.argv[1:]
    main.run()
""")


def test_a_full_disk_is_one_line_without_a_traceback():
  """--verbose adding the traceback: tests/train/test_console.py."""
  proc = subprocess.run([sys.executable, "-c", _FULL_DISK], cwd=REPO, capture_output=True,
                        text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
      "export failed: /out/tflite/x; No space left on device"], proc.stderr
