# Shell helpers shared by scripts/test, .ci/run and the other scripts;
# sourced, never run. Defines:
#   step NAME CMD…     runs CMD, printing its name and duration
#   SERVICE_PACKAGES   the cargo -p flags of the four binaries
#   locked             (--locked) when Cargo.lock exists
#   ensure_nextest     installs cargo-nextest $NEXTEST_VERSION when missing or another

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

# The nextest every run uses, whatever the machine had.
NEXTEST_VERSION=0.9.143

ensure_nextest() {
  if ! cargo nextest --version 2>/dev/null | grep -qx "release: $NEXTEST_VERSION"; then
    cargo install cargo-nextest --locked --version "$NEXTEST_VERSION"
  fi
}
