"""The binaries' console: TensorFlow's INFO and WARNING lines are off unless --verbose.

Every binary imports this module first, before anything imports TensorFlow:
TensorFlow's C++ logging reads TF_CPP_MIN_LOG_LEVEL once, while `import
tensorflow` runs and long before absl parses the flags, so the command line is
read here directly. A level the user set in the environment wins. TensorFlow's
Python modules log through the "tensorflow" and the "absl" loggers (SavedModel
writing, function loading); their INFO and WARNING records are dropped, chosen by
the file that logs them, so the binaries' own absl logging is untouched. Native libraries that ignore the variable (the TFLite converter)
are quietened where they run (export.tflite.native_output_quiet). The library
(tf_frontends/) never does any of this: it has no import side effects.

    from train import console  # first: TensorFlow's C++ log level
    ...
    console.define_verbose_flag()   # in the binary's flag definitions (--help, parsing)
    console.fail("train", error, status)   # one line (the traceback with --verbose), exit
"""
import logging
import os
import sys
import traceback

from absl import flags

QUIET_LEVEL = "2"          # hides INFO (0) and WARNING (1); errors stay
# TensorFlow's wheel is built with CUDA: on a machine without NVIDIA's driver every process
# logs "failed call to cuInit: ... UNKNOWN ERROR (303)" as a C++ ERROR (5 times in the main
# job), though no GPU exists to be missed. There the C++ errors are hidden too; those that
# matter reach the user as Python exceptions, which the binaries print.
QUIET_LEVEL_WITHOUT_GPU_DRIVER = "3"
NVIDIA_DRIVER = "/proc/driver/nvidia/version"
_VERBOSE_ARGS = ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1")
# Packages whose Python INFO / WARNING records are dropped unless --verbose.
QUIET_PACKAGES = ("tensorflow", "tf_keras", "tensorflow_hub")


def _logging_caller(record: logging.LogRecord) -> str:
  """The file that logged `record`. Some TensorFlow modules call absl's logging functions
  directly, and the record then names absl's own logging/__init__.py: the caller is found
  on the stack, which is the logging call's own while filters run."""
  if f"{os.sep}absl{os.sep}logging{os.sep}" not in record.pathname:
    return record.pathname
  frame = sys._getframe(1)     # pylint: disable=protected-access
  while frame is not None:
    path = frame.f_code.co_filename
    if not (path == __file__ or f"{os.sep}absl{os.sep}logging{os.sep}" in path
            or path == logging.__file__):
      return path
    frame = frame.f_back
  return record.pathname


class LibraryRecordFilter(logging.Filter):
  """Drops records below ERROR that files of QUIET_PACKAGES logged."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR:
      return True
    path = _logging_caller(record)
    return not any(f"{os.sep}{package}{os.sep}" in path for package in QUIET_PACKAGES)


def verbose_requested(argv) -> bool:
  return any(arg in _VERBOSE_ARGS for arg in argv[1:])


def quiet_tensorflow(argv=None) -> None:
  """Unless --verbose is in argv: TF_CPP_MIN_LOG_LEVEL (if unset) and the TF logger quiet."""
  if not verbose_requested(sys.argv if argv is None else argv):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LEVEL if os.path.exists(NVIDIA_DRIVER)
                          else QUIET_LEVEL_WITHOUT_GPU_DRIVER)
    for name in ("tensorflow", "absl"):
      logging.getLogger(name).addFilter(LibraryRecordFilter())


def define_verbose_flag() -> None:
  """Declares --verbose to absl (read before TensorFlow loads by quiet_tensorflow)."""
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_bool("verbose", False, "Show TensorFlow's C++ INFO and WARNING log lines.")


def fail(binary: str, error: BaseException, status: int = 1) -> None:
  """Prints "BINARY failed: <the error's first line>" (and the traceback under --verbose) to
  stderr and exits with `status`: a user's mistake is one line, not a stack."""
  if verbose_requested(sys.argv):
    traceback.print_exception(error)
  lines = str(error).strip().splitlines() or [type(error).__name__]
  # Multi-line messages of our own (a list of bad config values) stay whole; TensorFlow's
  # errors carry their C++ context after the first line.
  text = "\n".join(lines) if lines[0].endswith(":") else lines[0]
  print(f"{binary} failed: {text}", file=sys.stderr, flush=True)
  sys.exit(status)


quiet_tensorflow()
