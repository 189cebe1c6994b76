"""`python -m longrun` is the `longrun` command (the detached watcher runs this way)."""

from .cli import main

main()
