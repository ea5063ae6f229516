#!/usr/bin/env bash
# Generates the Python client of the whole contract from proto/ into
# clients/python/gen with grpcio-tools (its protoc; no system protoc):
#   clients/python/generate.sh [python]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${1:-python3}"
rm -rf "$here/gen" && mkdir -p "$here/gen"
cd "$root/proto"
# grpc_tools adds the well-known types (Timestamp, FieldMask…) itself.
"$python" -m grpc_tools.protoc -I . --python_out="$here/gen" --grpc_python_out="$here/gen" \
  $(find oms google -name '*.proto' | sort)
echo "generated $(find "$here/gen" -name '*.py' | wc -l) modules in $here/gen"
