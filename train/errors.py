"""The errors binaries print as one line (no traceback unless --verbose)."""


class RunError(ValueError):
  """A workdir, config, checkpoint or data set that does not fit the run."""


class CorruptFileError(RunError):
  """config.json or run_info.json is empty or not what train.main writes."""
