#!/usr/bin/env bash
# Builds a small package that depends on manet BY VERSION, as another project would, and runs a
# classification through the public API (`Classifier(contentsOf:)`, `classify(imageAt:)`); the
# top class and probability must equal what `manet run` prints for the same model and image.
#
#   tools/build/consumer.sh path/to/manet     (`make test` runs it with .build/release/manet)
#
# The committed HEAD is cloned into a scratch folder and tagged 0.0.0 there (nothing is pushed);
# the consumer in tools/build/consumer/ names it as `.package(url: "file://...", exact: "0.0.0")`.
# SwiftPM refuses a versioned dependency whose targets use unsafeFlags, so this also proves the
# package has none. Uncommitted changes are not part of the clone.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MANET=$(realpath "${1:-.build/release/manet}")
MODEL=fixtures/manet_w8_torchscript_op13.onnx
IMAGE=fixtures/data/resize_input.png

scratch=$(mktemp -d -t manet-consumer.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
git clone --quiet "$ROOT" "$scratch/manet"
git -C "$scratch/manet" -c user.name=consumer -c user.email=consumer@localhost tag 0.0.0
cp -R tools/build/consumer "$scratch/consumer"
sed -i "s#MANET_URL#file://$scratch/manet#; s#MANET_VERSION#0.0.0#" "$scratch/consumer/Package.swift"

echo "consumer: building a package that depends on manet 0.0.0 (a tagged clone of HEAD)"
# The consumer's own scratch folder; SwiftPM's shared cache keeps the remote dependencies.
# TMPDIR inside the scratch folder: the Swift driver leaves empty TemporaryDirectory.* folders there.
mkdir "$scratch/tmp"
TMPDIR="$scratch/tmp" swift build --package-path "$scratch/consumer" -c release 2>&1 | tail -3
ours=$("$scratch/consumer/.build/release/ManetConsumer" "$ROOT/$MODEL" "$ROOT/$IMAGE")
cli=$("$MANET" run "$MODEL" --input "$IMAGE" --json | "$ROOT/tools/.venv/bin/python" -c \
  'import json, sys; p = json.load(sys.stdin)["predictions"][0]["scores"][0]; print(p["index"], p["probability"])')
echo "consumer: ManetConsumer says '$ours', manet run says '$cli'"
[ "$ours" = "$cli" ] || { echo "consumer: the two disagree" >&2; exit 1; }
