# Test peers started by scripts/test-s3 and scripts/test-broker: a server
# of ours, found again by its pid file, and never one that merely listens
# on some port. Sourced, never run. Defines:
#   holds_port PID PORT     true when process PID listens on TCP PORT
#   running_peer NAME       prints PORT of our NAME if it still serves
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

running_peer() {
  local name=$1 pid port
  [ -f "$peer_state/$name" ] || return 1
  read -r pid port <"$peer_state/$name" || return 1
  if holds_port "$pid" "$port"; then
    echo "$port"
  else
    return 1
  fi
}

record_peer() {
  mkdir -p "$peer_state"
  echo "$2 $3" >"$peer_state/$1"
}

kernel_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
