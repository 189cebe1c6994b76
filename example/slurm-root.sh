# shellcheck shell=bash
# The Slurm 24.11 cluster of example/local-slurm.sh (--slurm 24.11): a Debian 13 root, made once
# with debootstrap from Debian's packages and kept under the cluster's folder, in which
# local-slurm.sh itself runs the same cluster on ports and node names of its own. Sourced by
# local-slurm.sh outside that root; every command is carried out by local-slurm.sh inside it.
# Uses say, die, usage, need_root, CHECKOUT and ROOT_MARK from local-slurm.sh.

ROOT_VERSION=24.11
ROOT_SUITE=trixie
ROOT_BASE=${LONGRUN_SLURM_24_DIR:-/var/lib/longrun-slurm-24.11}
ROOTFS=$ROOT_BASE/root
# Inside the root: longrun's virtual environment and the cluster's folder (local-slurm.sh's
# default, which is a path of the root's own).
ROOT_VENV=/opt/longrun-venv
ROOT_CONF=/var/lib/longrun-slurm/etc/slurm.conf
ROOT_PACKAGES=slurm-wlm,slurmdbd,munge,mariadb-server,python3,python3-venv,procps,zsh,tcsh,shellcheck,ca-certificates,hostname,passwd,login,cron

# The Debian mirror this machine's apt uses (the first one that is not the security archive).
root_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }' | grep -v security | head -n 1)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2 }' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Whether anything is mounted at or under a folder (such a folder is never deleted).
mounted_under() {
  awk -v dir="$1" '$2 == dir || index($2, dir "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}

root_made() { [ -s "$ROOTFS$ROOT_MARK" ]; }

root_make() {
  root_made && return 0
  case $ROOT_BASE in
    /tmp|/tmp/*|"$CHECKOUT"|"$CHECKOUT"/*) die "LONGRUN_SLURM_24_DIR=$ROOT_BASE: the root must lie outside /tmp and the checkout, which are mounted into it" ;;
  esac
  mkdir -p "$ROOT_BASE/log"
  if ! command -v debootstrap >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and this is not a Debian machine with apt-get: install debootstrap, then run 'up --slurm $ROOT_VERSION' again"
    say "installing debootstrap with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$ROOT_BASE/log/apt.log" 2>&1 \
      || { tail -n 20 "$ROOT_BASE/log/apt.log" >&2; die "apt-get install debootstrap failed (log: $ROOT_BASE/log/apt.log)"; }
  fi
  local new=$ROOTFS.new mirror
  mirror=$(root_mirror)
  if [ -e "$new" ]; then
    mounted_under "$new" && die "$new has file systems mounted in it; unmount them before making the root again"
    rm -rf "$new"
  fi
  say "making the Slurm $ROOT_VERSION root (Debian $ROOT_SUITE from $mirror) in $ROOTFS; this takes a few minutes"
  debootstrap --variant=minbase "$ROOT_SUITE" "$new" "$mirror" >"$ROOT_BASE/log/debootstrap.log" 2>&1 \
    || { tail -n 20 "$ROOT_BASE/log/debootstrap.log" >&2; die "debootstrap failed (log: $ROOT_BASE/log/debootstrap.log)"; }
  # The packages go in with apt inside the root, not with debootstrap's --include: debootstrap
  # does not order pre-dependencies (Debian 13's systemd, which cron pulls in, failed so in
  # December 2026), apt does. No service starts in there while they are installed.
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
  chmod 755 "$new/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf /etc/hosts "$new/etc/"
  mount -t proc proc "$new/proc"
  if ! { chroot "$new" apt-get update -qq \
      && chroot "$new" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ${ROOT_PACKAGES//,/ }; } >>"$ROOT_BASE/log/debootstrap.log" 2>&1; then
    umount "$new/proc"
    tail -n 20 "$ROOT_BASE/log/debootstrap.log" >&2
    die "installing Slurm $ROOT_VERSION's packages in the root failed (log: $ROOT_BASE/log/debootstrap.log)"
  fi
  umount "$new/proc"
  rm -f "$new/usr/sbin/policy-rc.d"
  chroot "$new" apt-get clean
  echo "$ROOT_VERSION" >"$new$ROOT_MARK"
  mv "$new" "$ROOTFS"
  say "Slurm $ROOT_VERSION root made: $(chroot "$ROOTFS" slurmctld -V)"
}

# bind DIR: the host's DIR (with what is mounted under it) at the same path in the root,
# as a slave, so that unmounting it there never reaches the host.
bind() {
  mkdir -p "$ROOTFS$1"
  mountpoint -q "$ROOTFS$1" && return 0
  mount --rbind "$1" "$ROOTFS$1"
  mount --make-rslave "$ROOTFS$1"
}

# What the root sees of the host: proc, sys, dev, /tmp and this checkout, at the same paths.
root_mount() {
  mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
  bind /sys
  bind /dev
  bind /tmp
  case $CHECKOUT in
    /tmp/*) ;;
    *) bind "$CHECKOUT" ;;
  esac
  # The host's name, name servers and certificate authorities: pip installs longrun's packages
  # in there through whatever this machine's network needs.
  cp /etc/hosts /etc/resolv.conf "$ROOTFS/etc/"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
}

# The processes that run inside the root (their / is the root): the cluster's daemons are
# stopped by their pid files first; what is left is the cluster's too, such as a job's child
# that outlived its job (proctrack/linuxproc loses track of orphans). They keep the mounts busy.
root_processes() {
  local proc
  for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/root" 2>/dev/null)" = "$ROOTFS" ] && echo "${proc#/proc/}"
  done
  return 0
}

root_stop_leftovers() {
  local pids deadline=$((SECONDS + 10))
  pids=$(root_processes)
  [ -n "$pids" ] || return 0
  say "ending what is left in the root: pids $(tr '\n' ' ' <<<"$pids")"
  # shellcheck disable=SC2086  # one pid a word
  kill $pids 2>/dev/null || true
  while [ -n "$(root_processes)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  pids=$(root_processes)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

root_unmount() {
  # Everything mounted in the root (by this checkout or another's), the deepest first.
  local dir
  awk -v dir="$ROOTFS" 'index($2, dir "/") == 1 { print $2 }' /proc/self/mounts | sort -r \
    | while read -r dir; do
        umount "$dir" 2>/dev/null || say "could not unmount $dir (in use?); it stays mounted"
      done
}

# root_exec CMD...: CMD inside the root, in the current folder (which must be visible there),
# with a clean environment: the root's PATH and longrun's, CI and LONGRUN_* settings.
root_exec() {
  local cwd=$PWD var
  [ -d "$ROOTFS$cwd" ] || die "the current folder $cwd is not visible inside the root (only this checkout and /tmp are): cd there first"
  local env=(PATH="$ROOT_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root
             LANG=C.UTF-8 TERM="${TERM:-dumb}" LONGRUN_VENV="$ROOT_VENV"
             PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1)
  for var in $(compgen -e); do
    case $var in
      CI|PYTEST_ADDOPTS) env+=("$var=${!var}") ;;
      LONGRUN_VENV|LONGRUN_SLURM_DIR|LONGRUN_SLURM_24_DIR) ;;
      LONGRUN_*) env+=("$var=${!var}") ;;
    esac
  done
  chroot "$ROOTFS" /usr/bin/env -i "${env[@]}" /usr/bin/env -C "$cwd" "$@"
}

root_cmd() { root_exec bash "$CHECKOUT/example/local-slurm.sh" "$@"; }

# longrun in the root, installed from the checkout again only when its sources changed since
# (a reinstall under a running test suite would take its commands away for a moment).
root_install() {
  local stamp=$ROOTFS$ROOT_VENV/.installed
  if [ -e "$stamp" ] && [ -z "$(find "$CHECKOUT/longrun" "$CHECKOUT/templates" "$CHECKOUT/pyproject.toml" \
      -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  root_exec bash "$CHECKOUT/example/install-longrun.sh" >&2
  touch "$stamp"
}

root_main() {
  case ${1:-} in
    up)
      need_root up
      root_make
      root_mount
      root_cmd up | sed -e '/^export SLURM_CONF/d' -e '/is up; for a shell/d'
      say "cluster 'longrun' (Slurm $ROOT_VERSION) is up; its commands answer inside the root:"
      say "  bash example/local-slurm.sh run --slurm $ROOT_VERSION -- CMD" ;;
    down)
      need_root down
      root_made || { say "nothing to stop (no Slurm $ROOT_VERSION root in $ROOTFS)"; return 0; }
      if mountpoint -q "$ROOTFS/proc"; then
        root_cmd down
      else
        say "no daemons to stop (the root's /proc is not mounted)"
      fi
      root_stop_leftovers
      root_unmount ;;
    stop)
      need_root stop
      { root_made && mountpoint -q "$ROOTFS/proc"; } || die "the Slurm $ROOT_VERSION cluster is not up"
      root_cmd stop "${@:2}" ;;
    status)
      if ! root_made; then
        echo "Slurm $ROOT_VERSION: no root in $ROOTFS yet ('up --slurm $ROOT_VERSION' makes it)"
        return 1
      fi
      if ! mountpoint -q "$ROOTFS/proc"; then
        echo "Slurm $ROOT_VERSION: stopped (the root in $ROOTFS is not mounted)"
        return 1
      fi
      root_cmd status ;;
    env)
      echo "# Slurm $ROOT_VERSION answers only inside its root: bash example/local-slurm.sh run --slurm $ROOT_VERSION -- CMD"
      echo "export SLURM_CONF=$ROOT_CONF" ;;
    run)
      need_root run
      shift
      [ "${1:-}" = -- ] && shift
      [ $# -gt 0 ] || { printf 'local-slurm: run what? run --slurm %s -- CMD [ARGS]\n' "$ROOT_VERSION" >&2; exit 2; }
      root_made || die "no Slurm $ROOT_VERSION root yet: run 'bash example/local-slurm.sh up --slurm $ROOT_VERSION' first"
      root_mount
      root_install
      root_exec env SLURM_CONF="$ROOT_CONF" "$@" ;;
    -h|--help|help|'') usage ;;
    *) printf "local-slurm: unknown command '%s'\n" "$1" >&2; usage ;;
  esac
}
