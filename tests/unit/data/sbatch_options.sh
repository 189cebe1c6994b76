#!/usr/bin/env bash
# Print "NAME KIND" (required, none or optional) for every long option the sbatch on PATH knows,
# as its getopt_long sees them: tests/unit/data/sbatch_options-<version>.txt are its output for
# the Slurm versions longrun is tested on (longrun/sbatch_options.py holds their union).
#
#   bash tests/unit/data/sbatch_options.sh [CANDIDATES_FILE] >tests/unit/data/sbatch_options-24.11.txt
#
# Candidates: the words of the libslurm and sbatch binaries, of `sbatch --help`, and of
# CANDIDATES_FILE (one name a line; e.g. the option table of an earlier version). sbatch is run
# with a configuration that names no reachable controller, so nothing can be submitted.
set -euo pipefail
conf=$(mktemp)
candidates=$(mktemp)
trap 'rm -f "$conf" "$candidates"' EXIT
printf 'ClusterName=none\nSlurmctldHost=localhost\n' >"$conf"
export SLURM_CONF=$conf
lib=$(ldd "$(command -v sbatch)" | awk '/libslurm/ { print $3 }')
{
  grep -aoE '[a-z][a-z0-9-]{1,30}' "$lib" "$(command -v sbatch)" | cut -d: -f2-
  sbatch --help 2>&1 | grep -o -- '--[a-z][a-z0-9-]*' | cut -c3-
  [ -n "${1:-}" ] && cat "$1"
} | grep -xE '[a-z][a-z0-9-]{1,30}' | sort -u >"$candidates"

# The full name getopt reports in its complaint about NAME, if it complains as told.
complaint() { grep -o "option '--[a-z0-9-]*' $2" <<<"$1" | head -n 1 | sed "s/^option '--//; s/' .*//"; }

declare -A kind=()
while read -r name; do
  said=$(sbatch "--$name" 2>&1 </dev/null | head -n 3 || true)
  case $said in
    *"unrecognized option"*|*"is ambiguous"*) continue ;;
    *"requires an argument"*) full=$(complaint "$said" "requires an argument"); kind[$full]=required; continue ;;
  esac
  said=$(sbatch "--$name=x" 2>&1 </dev/null | head -n 3 || true)
  case $said in
    *"doesn't allow an argument"*) full=$(complaint "$said" "doesn't allow an argument"); kind[$full]=none ;;
    *) [ -n "${kind[$name]:-}" ] || kind[$name]=unsaid ;;  # an optional value: its full name is not said
  esac
done <"$candidates"
# An optional-value option's name is never said: drop the prefixes of longer names.
for name in "${!kind[@]}"; do
  [ "${kind[$name]}" = unsaid ] || continue
  exact=1
  for other in "${!kind[@]}"; do
    [ "$other" != "$name" ] && [ "${other#"$name"}" != "$other" ] && exact=0
  done
  if [ $exact -eq 1 ]; then kind[$name]=optional; else unset "kind[$name]"; fi
done
for name in "${!kind[@]}"; do echo "$name ${kind[$name]}"; done | sort
