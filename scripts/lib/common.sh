# Shell helpers shared by scripts/test, .ci/run and the other scripts;
# sourced, never run. Defines:
#   step NAME CMD…     runs CMD, printing its name and duration
#   SERVICE_PACKAGES   the cargo -p flags of the four binaries
#   locked             (--locked) when Cargo.lock exists
#   ensure_nextest     installs cargo-nextest when missing

# shellcheck shell=bash

step() {
  local name=$1; shift
  local start=$SECONDS
  echo "==> $name"
  "$@"
  echo "<== $name: $((SECONDS - start)) s"
}

# The four binaries of the mesh, as cargo package flags.
SERVICE_PACKAGES=(-p user-svc -p product-svc -p order-svc -p gateway)

locked=()
[ -f Cargo.lock ] && locked=(--locked)

ensure_nextest() {
  command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
}
