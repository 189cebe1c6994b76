#!/usr/bin/env bash
# A private, single-machine Slurm cluster (munge, MariaDB, slurmdbd, slurmctld, and two slurmd:
# node <host> and node <host>-b, for multi-node jobs) for longrun's demo and tests. Everything
# lives in one folder; nothing under /etc/slurm is touched.
#
#   example/local-slurm.sh up       install what is missing, write the configuration, start
#                                   the daemons, wait until the node is idle and sacct answers
#   example/local-slurm.sh down     stop exactly the daemons this script started (by pid file)
#   example/local-slurm.sh stop D   stop one of them (slurmctld, slurmdbd...), e.g. to test a
#                                   restart; 'up' starts it again
#   example/local-slurm.sh status   say which daemons run and show the node
#   example/local-slurm.sh env      print the export line for a shell
#   example/local-slurm.sh run -- CMD [ARGS]
#                                   run one command with the cluster's environment
#
# --slurm VERSION (after the command) chooses the Slurm: 22.05, the default, is this machine's
# Debian packages; 24.11 is Debian 13's, in a root of its own made once with debootstrap and
# kept under /var/lib/longrun-slurm-24.11 (LONGRUN_SLURM_24_DIR), with ports and node names
# (<host>-v24, <host>-v24-b) of its own, so that both clusters can run at once. For 24.11,
# 'run' runs CMD inside that root, with longrun installed there from this checkout, and this
# checkout and /tmp at the same paths as outside.
#
# Settings (environment): LONGRUN_SLURM_DIR (default /var/lib/longrun-slurm),
# LONGRUN_SLURM_TIMEOUT (seconds to wait for each daemon, default 60).
set -euo pipefail

say() { printf 'local-slurm: %s\n' "$*"; }
die() { printf 'local-slurm: error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "this script starts system daemons and must run as root (try: sudo $0 $*)"
}

usage() {
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

# The Slurm asked for (--slurm, anywhere before `--`), and the one this root holds: a Debian 13
# root made by this script carries its version in ROOT_MARK.
ROOT_MARK=/etc/longrun-slurm-root
INSIDE=$(cat "$ROOT_MARK" 2>/dev/null || true)
WANTED=
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --slurm) [ $# -ge 2 ] || { printf 'local-slurm: --slurm needs a version: 22.05 or 24.11\n' >&2; exit 2; }
      WANTED=$2; shift 2 ;;
    --slurm=*) WANTED=${1#*=}; shift ;;
    --) ARGS+=("$@"); break ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
set -- ${ARGS[@]+"${ARGS[@]}"}
case ${WANTED:-default} in
  default) ;;
  22.05) [ -z "$INSIDE" ] || die "this is the Slurm $INSIDE root: run the script outside it for Slurm 22.05" ;;
  24.11) ;;
  *) printf "local-slurm: unknown Slurm version '%s': choose 22.05 (this machine's packages) or 24.11 (a Debian 13 root)\n" "$WANTED" >&2
     exit 2 ;;
esac

CHECKOUT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$WANTED" = 24.11 ] && [ -z "$INSIDE" ]; then
  # shellcheck source=example/slurm-root.sh
  . "$CHECKOUT/example/slurm-root.sh"
  root_main "$@"
  exit $?
fi

DIR=${LONGRUN_SLURM_DIR:-/var/lib/longrun-slurm}
WAIT=${LONGRUN_SLURM_TIMEOUT:-60}
CLUSTER=longrun
NODE_CPUS=16
HOST=$(hostname -s)
NODE=$HOST
if [ -n "$INSIDE" ]; then
  # The Slurm 24.11 root: ports and node names of its own, apart from the host's cluster (a
  # test that finds a node's processes by SLURMD_NODENAME must never touch the other's jobs).
  PORTS=26817
  NODE=$NODE-v24
else
  PORTS=16817
fi
CTLD_PORT=$PORTS
SLURMD_PORT=$((PORTS + 1))
DBD_PORT=$((PORTS + 2))
SLURMD_PORT_B=$((PORTS + 3))
DB_PORT=$((PORTS - 511))
NODE_B=$NODE-b

ETC=$DIR/etc
RUN=$DIR/run
LOG=$DIR/log
MUNGE_DIR=$DIR/munge
SOCKET=$MUNGE_DIR/munge.socket.2
DB_DIR=$DIR/mysql
DB_SOCKET=$RUN/mysqld.sock
export SLURM_CONF=$ETC/slurm.conf

on_debian() {
  [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
  command -v munged >/dev/null 2>&1 || missing+=(munge)
  command -v slurmdbd >/dev/null 2>&1 || missing+=(slurmdbd)
  command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  on_debian || die "missing ${missing[*]}, and this is not a Debian machine with apt-get: install Slurm, munge, slurmdbd and MariaDB with your system's package manager, then run '$0 up' again"
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOG/apt.log" 2>&1 || { tail -n 20 "$LOG/apt.log" >&2; die "apt-get update failed (log: $LOG/apt.log)"; }
  apt-get install -y -qq "${missing[@]}" >>"$LOG/apt.log" 2>&1 \
    || { tail -n 20 "$LOG/apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $LOG/apt.log)"; }
}

# pid_of NAME: the pid recorded for a daemon we started, if that process is still alive.
# NAME is the daemon (munged, slurmctld...), or slurmd-NODE for the slurmd of one node.
pid_of() {
  local file=$RUN/$1.pid pid argv0
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # A recycled pid would belong to some other program: check that it runs the daemon itself.
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)
  [ "${argv0##*/}" = "${1%%-*}" ] || return 1
  echo "$pid"
}

running() { pid_of "$1" >/dev/null; }

# wait_for WHAT LOGFILE COMMAND...: poll COMMAND until it succeeds or WAIT seconds pass.
wait_for() {
  local what=$1 logfile=$2 deadline=$((SECONDS + WAIT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      printf 'local-slurm: error: %s did not come up within %ss; last lines of %s:\n' "$what" "$WAIT" "$logfile" >&2
      tail -n 25 "$logfile" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
}

write_config() {
  local host=$HOST
  mkdir -p "$ETC" "$RUN" "$LOG" "$DIR/spool/ctld" "$DIR/spool/d-$NODE" "$DIR/spool/d-$NODE_B"
  chmod 0755 "$DIR"
  [ -s "$ETC/db.password" ] || { (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$ETC/db.password"); }
  cat >"$ETC/slurm.conf" <<EOF
# Written by longrun's example/local-slurm.sh; rewritten at every 'up' while slurmctld is down.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCKET,cred_expire=10
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d-%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
# task/cgroup with cgroup.conf's ConstrainRAMSpace: a job's --mem is a hard limit (cgroup v1 memory
# controller), and a step whose processes the kernel OOM-kills is recorded OUT_OF_MEMORY.
TaskPlugin=task/cgroup
SelectType=select/cons_tres
# Memory is allocated too (without it, task/cgroup sets no limit); a job without --mem gets 500 MB
# per CPU, so that all 16 CPUs of node $NODE (RealMemory 8000) can still run jobs at once.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
# A node whose slurmd stops answering is marked down after 20 s (Slurm's default: 300 s).
SlurmdTimeout=20
MinJobAge=300
InactiveLimit=0
SchedulerType=sched/backfill
MpiDefault=none
# Steps' CPU time and memory are gathered (every second: test steps are short), so sacct's TotalCPU and MaxRSS are real (longrun usage).
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
# No mail server here: mails go to $LOG/mail.log, one line each.
MailProg=$ETC/mail.sh
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# Connections to slurmdbd take their munge socket from here, not from AuthInfo.
AccountingStoragePass=$SOCKET
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
# Node $NODE has two GPUs that are only names (gres.conf: empty files), so that jobs can
# ask for --gpus and sacct shows gres/gpu in AllocTRES (longrun usage counts GPU hours).
GresTypes=gpu
AccountingStorageTRES=gres/gpu
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 Port=$SLURMD_PORT CPUs=$NODE_CPUS RealMemory=8000 Gres=gpu:2 State=UNKNOWN
# A second slurmd on this machine, its own node: multi-node jobs run in partition 'multi'.
NodeName=$NODE_B NodeHostname=$host NodeAddr=127.0.0.1 Port=$SLURMD_PORT_B CPUs=4 RealMemory=2000 State=UNKNOWN
# main: the default partition, preempted by 'high' in CANCEL mode.
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=CANCEL GraceTime=5
# requeue: preempted by 'high' in REQUEUE mode (the job goes back to PENDING with its job id).
PartitionName=requeue Nodes=$NODE MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=5
# high: preempts the two above, never preempted itself.
PartitionName=high Nodes=$NODE MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
# multi: both nodes, for jobs with --nodes=2.
PartitionName=multi Nodes=$NODE,$NODE_B MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=OFF
EOF
  cat >"$ETC/cgroup.conf" <<EOF
# Written by longrun's example/local-slurm.sh: memory limits only (cgroup v1, as mounted here).
CgroupPlugin=cgroup/v1
ConstrainRAMSpace=yes
EOF
  # Slurm drops a GPU without a device file: two empty files stand in for them.
  mkdir -p "$DIR/dev" && touch "$DIR/dev/gpu0" "$DIR/dev/gpu1"
  cat >"$ETC/gres.conf" <<EOF
NodeName=$NODE Name=gpu File=$DIR/dev/gpu[0-1]
EOF
  cat >"$ETC/mail.sh" <<EOF
#!/bin/sh
# slurmctld's MailProg on the local cluster (called as: mail.sh -s SUBJECT USER): one line per mail.
printf '%s to=%s subject=%s\\n' "\$(date +%Y-%m-%dT%H:%M:%S)" "\$3" "\$2" >>"$LOG/mail.log"
EOF
  chmod 0755 "$ETC/mail.sh"
  (umask 077; cat >"$ETC/slurmdbd.conf" <<EOF
# Written by longrun's example/local-slurm.sh.
AuthType=auth/munge
AuthInfo=socket=$SOCKET,cred_expire=10
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$ETC/db.password")
StorageLoc=slurm_acct_db
EOF
  )
  chmod 0600 "$ETC/slurmdbd.conf"
}

start_munge() {
  running munged && return 0
  mkdir -p "$MUNGE_DIR"
  chown munge: "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"
  if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    mungekey --create --keyfile="$MUNGE_DIR/munge.key" >/dev/null
    chown munge: "$MUNGE_DIR/munge.key"
    chmod 0600 "$MUNGE_DIR/munge.key"
  fi
  rm -f "$SOCKET" "$SOCKET.lock"
  su -s /bin/sh munge -c "/usr/sbin/munged --socket='$SOCKET' --key-file='$MUNGE_DIR/munge.key' \
    --pid-file='$MUNGE_DIR/munged.pid' --log-file='$MUNGE_DIR/munged.log' --seed-file='$MUNGE_DIR/munged.seed'" \
    || { tail -n 20 "$MUNGE_DIR/munged.log" >&2 2>/dev/null; die "munged did not start"; }
  wait_for munged "$MUNGE_DIR/munged.log" test -s "$MUNGE_DIR/munged.pid"
  cp "$MUNGE_DIR/munged.pid" "$RUN/munged.pid"
  wait_for munged "$MUNGE_DIR/munged.log" sh -c "munge -S '$SOCKET' -n | unmunge -S '$SOCKET'"
  say "munged running (pid $(pid_of munged))"
}

# shellcheck disable=SC2120  # called with -e through wait_for
db_client() { mariadb --no-defaults --socket="$DB_SOCKET" -u root "$@"; }

start_mariadb() {
  running mariadbd && return 0
  mkdir -p "$DB_DIR"
  chown mysql: "$DB_DIR"
  chown mysql: "$RUN"
  if [ ! -d "$DB_DIR/mysql" ]; then
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" --auth-root-authentication-method=socket \
      >"$LOG/mariadb-install.log" 2>&1 || { tail -n 20 "$LOG/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  fi
  touch "$LOG/mariadb.log"
  chown mysql: "$LOG/mariadb.log"
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" --socket="$DB_SOCKET" \
    --pid-file="$RUN/mariadbd.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --log-error="$LOG/mariadb.log" \
    --innodb-buffer-pool-size=1024M --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for MariaDB "$LOG/mariadb.log" db_client -e 'select 1'
  db_client <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$ETC/db.password")';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$(cat "$ETC/db.password")';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
  say "MariaDB running (pid $(pid_of mariadbd))"
}

start_slurmdbd() {
  running slurmdbd && return 0
  slurmdbd >>"$LOG/slurmdbd.log" 2>&1 || { tail -n 20 "$LOG/slurmdbd.log" >&2; die "slurmdbd did not start"; }
  wait_for slurmdbd "$LOG/slurmdbd.log" sacctmgr -n show cluster
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  say "slurmdbd running (pid $(pid_of slurmdbd))"
}

node_idle() {
  ! sinfo -h -N -o '%T' | grep -vqE '^(idle|mixed|allocated)'
}

start_slurm() {
  if ! running slurmctld; then
    slurmctld -f "$SLURM_CONF" >>"$LOG/slurmctld.log" 2>&1 || { tail -n 20 "$LOG/slurmctld.log" >&2; die "slurmctld did not start"; }
    wait_for slurmctld "$LOG/slurmctld.log" scontrol ping
    say "slurmctld running (pid $(pid_of slurmctld))"
  fi
  local node
  for node in "$NODE" "$NODE_B"; do
    running "slurmd-$node" && continue
    slurmd -f "$SLURM_CONF" -N "$node" >>"$LOG/slurmd-$node.log" 2>&1 \
      || { tail -n 20 "$LOG/slurmd-$node.log" >&2; die "slurmd of node $node did not start"; }
    wait_for "slurmd of node $node" "$LOG/slurmd-$node.log" running "slurmd-$node"
    say "slurmd of node $node running (pid $(pid_of "slurmd-$node"))"
  done
  # A node left DOWN or DRAIN by an earlier test run comes back here.
  for node in "$NODE" "$NODE_B"; do
    if sinfo -h -N -n "$node" -o '%T' | grep -qE '^(down|drain)'; then
      scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    fi
  done
  wait_for "the nodes (idle in sinfo)" "$LOG/slurmd-$NODE.log" node_idle
  wait_for "accounting (sacct)" "$LOG/slurmdbd.log" sacct -n -X -S now-1minutes
}

cmd_up() {
  need_root up
  mkdir -p "$LOG"
  install_packages
  running slurmctld || write_config
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  say "cluster '$CLUSTER' is up; for a shell:"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# stop NAME: TERM the daemon recorded in our pid file, wait, KILL if it lingers.
stop() {
  local pid
  pid=$(pid_of "$1") || { rm -f "$RUN/$1.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "$1 (pid $pid) ignored SIGTERM for 20s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$RUN/$1.pid"
  say "stopped $1 (pid $pid)"
}

cmd_down() {
  need_root down
  [ -d "$RUN" ] || { say "nothing to stop ($RUN does not exist)"; return 0; }
  stop "slurmd-$NODE_B"
  stop "slurmd-$NODE"
  stop slurmctld
  stop slurmdbd
  stop mariadbd
  stop munged
}

cmd_status() {
  local name pid all=0
  for name in munged mariadbd slurmdbd slurmctld "slurmd-$NODE" "slurmd-$NODE_B"; do
    if pid=$(pid_of "$name"); then
      printf '%-12s running (pid %s)\n' "$name" "$pid"
    else
      printf '%-12s stopped\n' "$name"
      all=1
    fi
  done
  if running slurmctld; then
    sinfo -N -o '%N %P %T %C' 2>&1 || true
  fi
  return $all
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  stop)
    need_root stop
    case ${2:-} in
      munged|mariadbd|slurmdbd|slurmctld|"slurmd-$NODE"|"slurmd-$NODE_B") stop "$2" ;;
      *) printf "local-slurm: stop what? one of: munged mariadbd slurmdbd slurmctld slurmd-%s slurmd-%s\n" "$NODE" "$NODE_B" >&2; exit 2 ;;
    esac ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  run)
    shift
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || { printf 'local-slurm: run what? run [--slurm VERSION] -- CMD [ARGS]\n' >&2; exit 2; }
    exec "$@" ;;
  -h|--help|help) usage ;;
  '') usage ;;
  *) printf "local-slurm: unknown command '%s'\n" "$1" >&2; usage ;;
esac
