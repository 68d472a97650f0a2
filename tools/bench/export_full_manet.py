"""Exports a full-width MA-Net (50.5 M parameters) with both PyTorch exporters, for checks not committed.

Usage: python tools/bench/export_full_manet.py OUTDIR [--width 64] [--seed 64] [--no-torchscript] [--keep-bn]

Writes OUTDIR/manet_w{W}_dynamo/model.onnx + model.onnx.data (dynamo exporter, default opset, external
data) and OUTDIR/manet_w{W}_torchscript_op13.onnx (TorchScript exporter, opset 13, BN folded), each
with test_data_set_0 (batch 2, PyTorch eval-mode outputs), checks them with onnx.checker and
onnxruntime, and prints the parameter counts that `manet inspect` should report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import make_fixtures as mf  # noqa: E402
import manet_reference as ref  # noqa: E402


def initializer_counts(path: Path) -> dict:
    """Elements in the ONNX file's initializers: all, and float ones (the weights)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    total = floats = 0
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        total += n
        floats += n if init.data_type == onnx.TensorProto.FLOAT else 0
    return {"initializers": len(model.graph.initializer), "elements": total, "float_elements": floats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seed", type=int, default=64)
    parser.add_argument("--no-torchscript", action="store_true", help="skip the TorchScript export")
    parser.add_argument("--keep-bn", action="store_true",
                        help="dynamo export with optimize=False: BatchNormalization kept, initializers named "
                             "as the state_dict (the default optimize=True folds BN into Conv)")
    args = parser.parse_args()

    mf.make_deterministic()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = ref.build_manet(num_classes=7, width=args.width, seed=args.seed)
    ref.make_bn_nontrivial(model, seed=args.seed + 1, input_size=224, passes=2, batch=2)
    model.eval()
    params = ref.parameter_count(model)
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    print(f"MA-Net width {args.width}: {params:,} parameters (state_dict also has {buffers:,} BN running-stat "
          f"elements)")

    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(args.seed + 2))
    with torch.no_grad():
        local, glob = model(x)
    inputs = {"input": x.numpy()}
    outputs = {"logits_local": local.numpy(), "logits_global": glob.numpy()}
    out = args.outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)

    exports = []
    name = f"manet_w{args.width}_dynamo" + ("_bn" if args.keep_bn else "")
    dyn = out / name / "model.onnx"
    t0 = time.time()
    if args.keep_bn:
        dyn.parent.mkdir(parents=True, exist_ok=True)
        for stale in dyn.parent.glob("model.onnx*"):
            stale.unlink()
        torch.onnx.export(model, (x,), str(dyn), dynamo=True, external_data=True, optimize=False,
                          input_names=["input"], output_names=mf.OUTPUT_NAMES,
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
        mf.strip_stack_traces(dyn)
    else:
        mf.export_dynamo(model, x, dyn)
    print(f"dynamo export: {time.time() - t0:.1f} s")
    mf.write_test_data(dyn.parent / "test_data_set_0", inputs, outputs)
    exports.append(dyn)

    if not args.no_torchscript:
        ts = out / f"manet_w{args.width}_torchscript_op13.onnx"
        t0 = time.time()
        mf.export_torchscript(model, x, ts)
        print(f"TorchScript export: {time.time() - t0:.1f} s")
        mf.write_test_data(out / f"manet_w{args.width}_torchscript_op13" / "test_data_set_0", inputs, outputs)
        exports.append(ts)

    for path in exports:
        note = mf.check_onnx(path, inputs, outputs)
        counts = initializer_counts(path)
        print(f"{path.relative_to(out)}: opsets {mf.opsets(path)}; {counts['initializers']} initializers, "
              f"{counts['elements']:,} elements ({counts['float_elements']:,} float); {note}")
        print(f"  ops {mf.op_histogram(path)}")
    print(f"parameter count (PyTorch): {params}")


if __name__ == "__main__":
    main()
