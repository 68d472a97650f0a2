"""PyTorch's side of manet's .pth support: writes a torch.save checkpoint for manet to import, and checks
the .pth.tar manet exports.

Usage (tools/.venv-torch):
  python tools/parity/check_pth.py make OUTDIR [--width 64] [--classes 7] [--seed 64]
      OUTDIR/manet_wW.pth.tar ({'state_dict'} with `module.` keys, zip format), the same weights as
      OUTDIR/manet_wW.safetensors, and OUTDIR/input.npy + OUTDIR/logits.npy (batch 2, eval mode, fused
      0.6 * local + 0.4 * global; and the two heads as logits_local.npy, logits_global.npy).
  python tools/parity/check_pth.py check EXPORTED.pth.tar [--onnx MODEL.onnx] [--width W] [--classes C]
      torch.load(weights_only=True); the reference model takes the state_dict with strict=True;
      torch.optim.SGD takes the optimizer state (every buffer the shape of its parameter) and steps;
      with --onnx (manet's ONNX export of the same checkpoint), onnxruntime's logits against PyTorch's.
  python tools/parity/check_pth.py compare MODEL.onnx OUTDIR
      onnxruntime on OUTDIR/input.npy against the PyTorch logits `make` wrote.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import manet_reference as ref  # noqa: E402


def run_ort(path: Path, x: np.ndarray) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    return {o.name: v for o, v in zip(session.get_outputs(), outputs)}


def make(args) -> None:
    from safetensors.torch import save_file

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = ref.MANet(args.classes, args.width)
    ref.make_bn_nontrivial(model, seed=args.seed + 1, input_size=64)
    model.eval()
    state = model.state_dict()
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in state.items())},
               out / f"manet_w{args.width}.pth.tar")
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"manet_w{args.width}.safetensors"))
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(args.seed + 2))
    with torch.no_grad():
        local, glob = model(x)
    np.save(out / "input.npy", x.numpy())
    np.save(out / "logits_local.npy", local.numpy())
    np.save(out / "logits_global.npy", glob.numpy())
    print(f"wrote {out}: width {args.width}, {args.classes} classes, {ref.parameter_count(model)} parameters")


def compare(args) -> None:
    out = Path(args.outdir)
    x = np.load(out / "input.npy")
    got = run_ort(Path(args.model), x)
    for name in ("logits_local", "logits_global"):
        ref_logits = np.load(out / f"{name}.npy")
        diff = float(np.abs(got[name] - ref_logits).max())
        print(f"{name}: onnxruntime (manet's export) vs PyTorch max |diff| {diff:.3e} (max |logit| {np.abs(ref_logits).max():.3f})")


def check(args) -> None:
    ckpt = torch.load(args.file, weights_only=True)
    print(f"torch.load(weights_only=True): keys {list(ckpt)}; epoch {ckpt.get('epoch')}, best_acc {ckpt.get('best_acc')}")
    state = ref.strip_module_prefix(ckpt["state_dict"])
    width = args.width or state["conv1.weight"].shape[0]
    classes = args.classes or state["fc_1.weight"].shape[0]
    model = ref.MANet(classes, width)
    model.load_state_dict(state, strict=True)
    print(f"load_state_dict(strict=True): ok (width {width}, {classes} classes, {len(state)} entries)")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    optimizer.load_state_dict(ckpt["optimizer"])
    params = list(model.parameters())
    buffers = 0
    for p in params:
        s = optimizer.state.get(p, {})
        if "momentum_buffer" in s:
            assert s["momentum_buffer"].shape == p.shape, (s["momentum_buffer"].shape, p.shape)
            buffers += 1
    group = optimizer.param_groups[0]
    print(f"torch.optim.SGD.load_state_dict: ok; {buffers} of {len(params)} parameters have a momentum buffer of their "
          f"shape; lr {group['lr']}, momentum {group['momentum']}, weight_decay {group['weight_decay']}")
    model.train()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    loss = ref.manet_loss(*model(x), torch.tensor([0, 1]))
    loss.backward()
    optimizer.step()
    print(f"one SGD step from the loaded state: loss {loss.item():.6f}")
    if args.onnx:
        import onnxruntime as ort

        model.eval()
        side = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"]).get_inputs()[0].shape[2]
        x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            model.load_state_dict(state, strict=True)
            local, glob = model(x)
        got = run_ort(Path(args.onnx), x.numpy())
        for name, value in (("logits_local", local), ("logits_global", glob)):
            print(f"{name}: PyTorch (exported state_dict) vs onnxruntime (manet's ONNX) max |diff| "
                  f"{float(np.abs(got[name] - value.numpy()).max()):.3e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("outdir")
    m.add_argument("--width", type=int, default=64)
    m.add_argument("--classes", type=int, default=7)
    m.add_argument("--seed", type=int, default=64)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--onnx")
    c.add_argument("--width", type=int)
    c.add_argument("--classes", type=int)
    k = sub.add_parser("compare")
    k.add_argument("model")
    k.add_argument("outdir")
    args = parser.parse_args()
    torch.set_num_threads(2)
    {"make": make, "check": check, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
