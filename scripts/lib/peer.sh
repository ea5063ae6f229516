# Test peers started by scripts/test-s3 and scripts/test-broker: a server
# of ours, found again by its pid file, and never one that merely listens
# on some port. Sourced, never run. Defines:
#   holds_port PID PORT     true when process PID listens on TCP PORT
#   running_peer NAME       prints PORT of our NAME if it still serves (and
#                           stops it if its installation was removed)
#   record_peer NAME PID PORT
#   kernel_port             prints a port of 127.0.0.1 the kernel picked

# shellcheck shell=bash

peer_state="${TMPDIR:-/tmp}/oms-test-peers"

holds_port() {
  local pid=$1 port hex inode
  port=$2
  hex=$(printf ':%04X' "$port")
  # The inodes of sockets listening (state 0A) on the port, against the
  # sockets among the process's open files.
  for inode in $(awk -v p="$hex" 'NR > 1 && $4 == "0A" && $2 ~ p"$" { print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "socket:\[$inode\]"; then
      return 0
    fi
  done
  return 1
}

# Whether process PID's program and the files its command line names are
# still there. A peer started from a work tree that was deleted since
# (a CI clone) keeps listening, but fails as soon as it loads a module it
# had not loaded yet (moto answered 500: "No module named werkzeug.debug").
installed() {
  local pid=$1 exe arg
  exe=$(readlink "/proc/$pid/exe") || return 1
  case "$exe" in *" (deleted)") return 1 ;; esac
  while IFS= read -r -d '' arg; do
    case "$arg" in /dev/* | /proc/*) ;; /*) [ -e "$arg" ] || return 1 ;; esac
  done <"/proc/$pid/cmdline"
}

running_peer() {
  local name=$1 pid port
  [ -f "$peer_state/$name" ] || return 1
  read -r pid port <"$peer_state/$name" || return 1
  holds_port "$pid" "$port" || return 1
  if ! installed "$pid"; then
    # Ours (its pid file says so), and broken: a fresh one replaces it.
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  echo "$port"
}

record_peer() {
  mkdir -p "$peer_state"
  echo "$2 $3" >"$peer_state/$1"
}

kernel_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
