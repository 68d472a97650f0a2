#!/usr/bin/env python3
"""Checks that `manet export --format safetensors` gives a state_dict PyTorch loads strictly and runs identically.

Usage (needs torch: the torch venv, not the tools venv):
    /work/venvs/torch/bin/python tools/check_safetensors_roundtrip.py [--manet BIN] [--checkpoint CKPT]
        [--input-size 64] [--batch 2] [--seed 0]

Without --checkpoint, one is made with `manet import fixtures/manet_w8.safetensors` (width 8, BN
statistics not trivial). Then:
  1. `manet export CKPT --format safetensors` and `manet export CKPT` (ONNX, BatchNorm kept);
  2. tools/manet_reference.py's MANet(num_classes, width) loads the safetensors file with
     load_state_dict(strict=True) (every key, shape and dtype, int64 num_batches_tracked included);
  3. on a seeded uniform [0, 1) input, PyTorch's eval outputs are compared with onnxruntime on the
     Swift export and with the Swift interpreter (`manet verify` on a test-data folder holding
     PyTorch's outputs). Pass: max |diff| <= 1e-5 * max(1, max|ref|) and the same top-1.
Exit 0 on pass, 1 on a mismatch, 2 on an error.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import manet_reference as ref  # noqa: E402


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"failed: {' '.join(cmd)}\n{result.stdout}{result.stderr}", file=sys.stderr)
        sys.exit(2)
    return result.stdout


def compare(label, actual, expected):
    diff = float(np.max(np.abs(actual - expected)))
    tol = 1e-5 * max(1.0, float(np.max(np.abs(expected))))
    same_top1 = bool(np.array_equal(actual.argmax(1), expected.argmax(1)))
    ok = diff <= tol and same_top1
    print(f"  {label}: max|diff| {diff:.3e} (tol {tol:.3e}), top-1 {'same' if same_top1 else 'DIFFERENT'} -> {'ok' if ok else 'FAIL'}")
    return ok


def main():
    root = os.path.dirname(HERE)
    parser = argparse.ArgumentParser()
    parser.add_argument("--manet", default=os.path.join(root, ".build/release/manet"))
    parser.add_argument("--checkpoint")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            ckpt = os.path.join(tmp, "imported.pb")
            run([args.manet, "import", os.path.join(root, "fixtures/manet_w8.safetensors"), "-o", ckpt,
                 "--input-size", str(args.input_size)])
        state_path = os.path.join(tmp, "state.safetensors")
        onnx_path = os.path.join(tmp, "model.onnx")
        run([args.manet, "export", ckpt, "--format", "safetensors", "-o", state_path])
        run([args.manet, "export", ckpt, "-o", onnx_path])

        state = load_file(state_path)
        width = state["conv1.weight"].shape[0]
        num_classes = state["fc_1.weight"].shape[0]
        size = int(dict((p.key, p.value) for p in onnx.load(onnx_path, load_external_data=False).metadata_props)["input_size"])
        model = ref.MANet(num_classes=num_classes, width=width)
        model.load_state_dict(state, strict=True)  # raises on any missing / unexpected / mis-shaped key
        counters = [k for k in state if k.endswith("num_batches_tracked")]
        assert all(state[k].dtype == torch.int64 and state[k].dim() == 0 for k in counters)
        print(f"load_state_dict(strict=True): ok ({len(state)} tensors, {len(counters)} int64 num_batches_tracked); "
              f"MA-Net width {width}, {num_classes} classes, input {size}")
        model.eval()

        gen = torch.Generator().manual_seed(args.seed)
        x = torch.rand(args.batch, 3, size, size, generator=gen)
        with torch.no_grad():
            torch_local, torch_global = (t.numpy() for t in model(x))

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        ort_local, ort_global = session.run(["logits_local", "logits_global"], {"input": x.numpy()})
        print("PyTorch (reloaded state_dict) vs onnxruntime on the Swift ONNX export:")
        ok = compare("logits_local", ort_local, torch_local)
        ok = compare("logits_global", ort_global, torch_global) and ok

        data = os.path.join(tmp, "reference", "test_data_set_0")
        os.makedirs(data)
        for name, array in (("input_0", x.numpy()), ("output_0", torch_local), ("output_1", torch_global)):
            with open(os.path.join(data, name + ".pb"), "wb") as f:
                f.write(numpy_helper.from_array(array).SerializeToString())
        verify = subprocess.run([args.manet, "verify", onnx_path, "--reference", os.path.join(tmp, "reference")],
                                capture_output=True, text=True)
        print("Swift interpreter (`manet verify`) vs PyTorch:")
        print("  " + (verify.stdout + verify.stderr).strip().replace("\n", "\n  "))
        ok = ok and verify.returncode == 0
        print("round trip: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
