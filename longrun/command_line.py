"""The wrapper's own argument grammar: where sbatch_longrun's options end and sbatch's begin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def split_wrapper_args(
    argv: Sequence[str], takes_value: Mapping[str, bool]
) -> tuple[list[str], list[str]]:
    """Split argv at the first token that is not one of the wrapper's options.

    `takes_value` maps each wrapper option name (e.g. "--max-restarts") to whether it takes a
    value. Wrapper options come first, as with the earlier slurm-longrun; from the first
    unknown token on, everything belongs to sbatch (options, script, script arguments), so a
    wrapper option written after the script reaches the script as an argument.
    """
    wrapper: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, has_eq, _ = token.partition("=")
        if name not in takes_value:
            break
        if takes_value[name] and not has_eq:
            wrapper.extend(argv[i : i + 2])
            i += 2
        else:
            wrapper.append(token)
            i += 1
    return wrapper, list(argv[i:])
