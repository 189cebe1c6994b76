"""longrun: run Slurm work that outlasts one job's walltime as a self-continuing chain of jobs."""

__version__ = "0.2.0"
