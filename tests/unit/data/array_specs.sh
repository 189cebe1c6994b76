#!/usr/bin/env bash
# What slurmctld makes of --array values: for each SPEC below, one held job is submitted and
# cancelled again. Prints "OK<TAB>SPEC<TAB>INDICES<TAB>THROTTLE" (INDICES one per task, as
# `squeue -r` lists them) or "FAIL<TAB>SPEC<TAB>what sbatch printed"; the first line is the
# cluster's MaxArraySize. tests/unit/data/array-specs-<version>.txt are its output; the unit
# test reads longrun's parser against them.
#
#   eval "$(bash example/local-slurm.sh env)"; export SLURM_CONF
#   bash tests/unit/data/array_specs.sh PARTITION >tests/unit/data/array-specs-22.05.txt
set -euo pipefail
partition=${1:-multi}
script=$(mktemp)
trap 'rm -f "$script"' EXIT
printf '#!/bin/bash\ntrue\n' >"$script"
SPECS=(
  '0-5' '7' '1,3,5-9:2' '0-99%10' '3,1,3' '[0-5]' '[0-5]%2' '[1,3,5-7]' '[1-9:2]' '1-3%x'
  '1,,2' ',1' ' 3' '3 ' '+3' '-' '[' '[]' '0-5]' '[0-5' '[[0-5]]' '5:2' '1-10:' '1-5%2,7'
  '1-5,%3' '%3' '0x10' '1000' '1001' '1-3:1001' '1-3:1000' '3-1' '-1' ' 1-3' '1-[3]'
  '1-3]:2' '0-5%0' '1e3' 'a-b' '5-1' '1-5:0' ',' '1-3%2%4' '1-4:2%2' '٣'
)
scontrol show config | awk '$1 == "MaxArraySize" { print "MaxArraySize\t" $3 }'
for spec in "${SPECS[@]}"; do
  if out=$(sbatch --hold --parsable -o /dev/null -p "$partition" "--array=$spec" "$script" 2>&1); then
    job=${out%%;*}
    indices=$(squeue -h -r -j "$job" -o %K | sort -n | paste -sd, -)
    throttle=$(scontrol show job -o "$job" | grep -o 'ArrayTaskThrottle=[0-9]*' | head -n 1 | cut -d= -f2 || true)
    scancel "$job"
    printf 'OK\t%s\t%s\t%s\n' "$spec" "$indices" "${throttle:-0}"
  else
    printf 'FAIL\t%s\t%s\n' "$spec" "$(tr '\n' ' ' <<<"$out")"
  fi
done
