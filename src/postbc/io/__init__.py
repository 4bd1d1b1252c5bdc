"""Files the project writes: atomic writes, checkpoints, run directories and metrics."""
