#!/usr/bin/env bash
# The second half of `make demo`: export the trained model, look at it, run it, verify it against
# the trainer and onnxruntime, import it back and fine-tune it. Called by tools/demo/demo.sh.
# Usage: demo_interop.sh MANET WORK DATA RUN THREADS WIDTH SIZE (WORK/evaluate.out holds the evaluation line)
set -euo pipefail
MANET="$1"; WORK="$2"; DATA="$3"; RUN="$4"; THREADS="$5"; WIDTH="$6"; SIZE="$7"
PY="${MANET_PYTHON:-tools/.venv/bin/python}"
ONNX="$WORK/onnx"
mkdir -p "$ONNX"
say() { printf '%s\n' "$*"; }

# 4. Export: the default graph (BatchNormalization kept, fused outputs) and a BN-folded one.
"$MANET" export "$RUN/model_best.pb" -o "$ONNX/manet.onnx" --fused >"$WORK/export.out"
"$MANET" export "$RUN/model_best.pb" -o "$ONNX/manet_folded.onnx" --fused --fold-bn >>"$WORK/export.out"
say "[4/9] export: $ONNX/manet.onnx and manet_folded.onnx (--fold-bn), opset 17, dynamic batch -> proves the ONNX checker and shape inference accept what the trainer made"

# 5. Inspect.
"$MANET" inspect "$ONNX/manet.onnx" >"$WORK/inspect.out"
params=$(grep -i '^parameters' "$WORK/inspect.out" | head -1 | sed -E 's/[[:space:]]+/ /g')
checker=$(grep -i 'checker' "$WORK/inspect.out" | head -1 | sed -E 's/[[:space:]]+/ /g')
say "[5/9] inspect: $params; $checker -> proves the file reads back with every op runnable by the interpreter"

# 6. Run the exported file in the interpreter over the whole test split and score it.
"$MANET" run "$ONNX/manet.onnx" --input "$DATA/test" --json >"$WORK/run.json"
run_acc=$("$PY" - "$WORK/run.json" <<'PY'
import json, os, sys
preds = json.load(open(sys.argv[1]))["predictions"]
right = sum(int(os.path.basename(os.path.dirname(p["input"]))) == p["scores"][0]["index"] for p in preds)
print(f"{100.0 * right / len(preds):.3f}% ({right}/{len(preds)})")
PY
)
eval_acc=$(sed -E 's/^accuracy ([0-9.]+)%.*/\1/' "$WORK/evaluate.out")
say "[6/9] run: the exported ONNX in the interpreter classifies the test split at $run_acc; the trainer's evaluation said $eval_acc% -> proves interpreter and trainer make the same decisions"

# 7. Verify: the interpreter against onnxruntime on generated inputs, then the BN-folded export
# against onnxruntime's outputs of the unfolded one.
"$MANET" verify "$ONNX/manet.onnx" --against onnxruntime --batch-size 4 --save-reference "$WORK/ort_reference" >"$WORK/verify_ort.out"
"$MANET" verify "$ONNX/manet_folded.onnx" --reference "$WORK/ort_reference" >"$WORK/verify_folded.out"
worst=$(grep -iE 'max abs' "$WORK/verify_ort.out" | head -2 | sed -E 's/[[:space:]]+/ /g' | paste -sd';' -)
say "[7/9] verify: interpreter vs onnxruntime passes ($worst); BN-folded export vs onnxruntime passes -> proves the numbers survive export, folding and a second runtime"

# 8. Import the exported ONNX back into a trainable checkpoint.
"$MANET" import "$ONNX/manet.onnx" -o "$WORK/imported.pb" >"$WORK/import.out"
say "[8/9] import: $ONNX/manet.onnx -> $WORK/imported.pb -> proves an ONNX file maps back to named, trainable parameters"

# 9. Fine-tune the imported model for one epoch.
"$MANET" train --data "$DATA" --init "$WORK/imported.pb" --width "$WIDTH" --input-size "$SIZE" --epochs 1 --no-augment --batch-size 32 --lr 0.001 \
  --threads "$THREADS" --print-freq 1000 --seed 2 --checkpoint-dir "$WORK/finetune" --log "$WORK/finetune/log.txt" --overwrite --plain >"$WORK/finetune.out"
ft=$(grep '^ \* Accuracy' "$WORK/finetune/log.txt" | tail -1 | sed -E 's/^ \* Accuracy //')
say "[9/9] fine-tune: one epoch from the imported model, test accuracy $ft% -> proves an imported model trains further"
