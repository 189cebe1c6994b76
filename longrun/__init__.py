"""longrun: run Slurm work that outlasts one job's walltime as a self-continuing chain of jobs.

From Python: `longrun.submit(...)`, `longrun.chain(id)`, `longrun.chains()` (see longrun.api);
inside a job: `longrun.job`. They are loaded on first use, so that `import longrun` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

_API = ("Chain", "Link", "chain", "chains", "submit")
_ERRORS = ("LongrunError", "UsageError", "SlurmCommandError", "ChainNotFoundError", "StateError")
__all__ = [*_API, *_ERRORS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'longrun' has no attribute {name!r}")
