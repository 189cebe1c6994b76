"""longrun: run Slurm work that outlasts one job's walltime as a self-continuing chain of jobs."""

__version__ = "0.2.0"

from loguru import logger as _logger

# A library stays quiet; the command line enables logging at the level the user chose.
_logger.disable("longrun")
