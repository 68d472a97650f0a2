#!/usr/bin/env bash
# Generates Sources/_CONNX/checkpoint.pb.{h,cc} from proto/checkpoint.proto with the protoc on PATH.
#
#   tools/build/protoc.sh          regenerate the committed files (after editing the schema, or
#                                  after a protobuf upgrade: `make proto`)
#   tools/build/protoc.sh --check  fail if the committed files differ from what this protoc
#                                  generates (`make build` runs this before `swift build`)
#
# The generated files carry `#error` guards for the protobuf version that made them, so they must
# come from the protoc that matches the installed libprotobuf headers (Debian 12: 3.21).
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=Sources/_CONNX
FILES=(checkpoint.pb.h checkpoint.pb.cc)
command -v protoc >/dev/null || { echo "protoc: not found (Debian: protobuf-compiler; \`make deps\` installs it)" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
protoc --proto_path=proto --cpp_out="$scratch" proto/checkpoint.proto

if [ "${1:-}" = "--check" ]; then
  for f in "${FILES[@]}"; do
    if ! cmp -s "$scratch/$f" "$OUT/$f"; then
      echo "$OUT/$f differs from what $(protoc --version) generates from proto/checkpoint.proto;" \
           "run \`make proto\` and commit the result" >&2
      exit 1
    fi
  done
else
  for f in "${FILES[@]}"; do cp "$scratch/$f" "$OUT/$f"; done
  echo "wrote ${FILES[*]/#/$OUT/} with $(protoc --version)"
fi
