"""Writes the committed PyTorch reference fixtures (ONNX exports, test data, weights, gradients).

Usage: python tools/make_fixtures.py OUTDIR [--only NAME[,NAME...]] [--list]

Every generator is deterministic (fixed seeds, deterministic algorithms, one thread) and records
each file it writes in OUTDIR/MANIFEST (path relative to OUTDIR, sha256, maker, versions, seed,
note). Regenerating one part (`--only`) rewrites only that part's MANIFEST lines; lines written by
other tools are kept as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manet_reference as ref  # noqa: E402

SCRIPT = "tools/make_fixtures.py"
MODEL_SEED = 8          # init of the width-8 fixture model
BN_SEED = 9             # its BN statistics / affine perturbation
INPUT_SEED = 10         # the batch-2 224x224 test input
TRAIN_SEED = 12         # fixed training batches (11 was ill-conditioned, see gen_training)
MIN_ONNXSCRIPT = (0, 6)  # torch 2.13's dynamo exporter imports onnxscript._framework_apis.torch_2_11

OUTPUT_NAMES = ["logits_local", "logits_global"]
DYNAMIC_AXES = {"input": {0: "batch"}, "logits_local": {0: "batch"}, "logits_global": {0: "batch"}}


# Environment, MANIFEST ----------------------------------------------------------------------------


def versions() -> str:
    from importlib.metadata import version

    # torchvision by its distribution metadata: importing it may need the shim in torchvision_fixtures.
    return (f"torch={torch.__version__} torchvision={version('torchvision')} onnx={version('onnx')} "
            f"onnxruntime={version('onnxruntime')} onnxscript={version('onnxscript')} numpy={np.__version__}")


def make_deterministic() -> None:
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # may be set only once per process, before any parallel work
        pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Manifest:
    """Lines `path<TAB>sha256<TAB>maker<TAB>versions<TAB>seed=N<TAB>note`; '#' lines are comments."""

    HEADER = [
        "# fixtures/MANIFEST: every committed fixture file and what made it.",
        "# Columns (tab-separated): path (relative to fixtures/), sha256, maker (script:function),",
        "# versions of the tools that made it, seed, note. Regenerate with `make fixtures`",
        "# (or `python tools/make_fixtures.py fixtures --only NAME`).",
    ]

    def __init__(self, outdir: Path):
        self.path = outdir / "MANIFEST"
        self.outdir = outdir
        self.lines: list[str] = []
        if self.path.exists():
            self.lines = [l for l in self.path.read_text().splitlines() if l and not l.startswith("#")]
        self.versions = versions()

    def drop_maker(self, maker: str) -> None:
        self.lines = [l for l in self.lines if l.split("\t")[2:3] != [maker]]

    def add(self, path: Path, maker: str, seed, note: str = "") -> None:
        rel = path.relative_to(self.outdir).as_posix()
        self.lines = [l for l in self.lines if l.split("\t")[0] != rel]
        note = note.replace("\t", " ").replace("\n", " ")
        self.lines.append(f"{rel}\t{sha256(path)}\t{maker}\t{self.versions}\tseed={seed}\t{note}")

    def write(self) -> None:
        # Lines of other tools are taken from the file as it is now, not as it was when this run
        # started: other generators may have added theirs meanwhile.
        ours = [l for l in self.lines if l.split("\t")[2:3] and l.split("\t")[2].startswith(SCRIPT + ":")]
        current = self.path.read_text().splitlines() if self.path.exists() else []
        theirs = [l for l in current if l and not l.startswith("#")
                  and not (l.split("\t")[2:3] and l.split("\t")[2].startswith(SCRIPT + ":"))]
        self.lines = sorted(ours + theirs, key=lambda l: l.split("\t")[0])
        self.path.write_text("\n".join(self.HEADER + self.lines) + "\n")


# Tensors and checks -------------------------------------------------------------------------------


def write_pb(path: Path, array: np.ndarray, name: str) -> None:
    from onnx import numpy_helper

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString())


def write_test_data(folder: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> list[Path]:
    """ONNX test-data layout: input_K.pb / output_K.pb, TensorProtos named as the graph's values."""
    if folder.exists():
        shutil.rmtree(folder)
    files = []
    for prefix, tensors in (("input", inputs), ("output", outputs)):
        for k, (name, array) in enumerate(tensors.items()):
            p = folder / f"{prefix}_{k}.pb"
            write_pb(p, array, name)
            files.append(p)
    return files


def tolerance(ref_array: np.ndarray) -> float:
    return 1e-5 * max(1.0, float(np.abs(ref_array).max()))


def check_onnx(path: Path, inputs: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> str:
    """onnx.checker (full check with shape inference) + onnxruntime parity; returns a MANIFEST note."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(list(expected), inputs)
    parts = []
    for (name, want), have in zip(expected.items(), got):
        diff = float(np.abs(have - want).max())
        tol = tolerance(want)
        top1 = bool((have.argmax(-1) == want.argmax(-1)).all()) if want.ndim == 2 else True
        if diff > tol or not top1:
            raise AssertionError(f"{path}: {name} onnxruntime vs PyTorch max|diff| {diff:.3g} > {tol:.3g} (top1 ok: {top1})")
        parts.append(f"{name} ort max|diff| {diff:.2e} (tol {tol:.2e})")
    print(f"  checked {path.name}: checker ok; " + "; ".join(parts))
    return "checker ok; " + "; ".join(parts)


def op_histogram(path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    hist: dict[str, int] = {}
    for n in model.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    return dict(sorted(hist.items()))


def opsets(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)


# The width-8 fixture model ------------------------------------------------------------------------

_W8 = None


def w8_model() -> ref.MANet:
    """Width 8, 7 classes, non-trivial BN statistics and affine parameters, eval mode."""
    global _W8
    if _W8 is None:
        make_deterministic()
        model = ref.build_manet(num_classes=7, width=8, seed=MODEL_SEED)
        ref.make_bn_nontrivial(model, seed=BN_SEED, input_size=224)
        _W8 = model.eval()
    return _W8


def w8_input() -> torch.Tensor:
    gen = torch.Generator().manual_seed(INPUT_SEED)
    return torch.rand(2, 3, 224, 224, generator=gen)


@torch.no_grad()
def w8_reference() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    x = w8_input()
    local, glob = w8_model()(x)
    return {"input": x.numpy()}, {"logits_local": local.numpy(), "logits_global": glob.numpy()}


def export_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=13, input_names=["input"],
                      output_names=OUTPUT_NAMES, dynamic_axes=DYNAMIC_AXES, **extra)


def strip_stack_traces(path: Path) -> None:
    """Drops the dynamo exporter's per-node `pkg.torch.onnx.stack_trace` metadata: it holds absolute
    paths of this machine (so the file would differ per checkout) and is most of the file's bytes."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for node in model.graph.node:
        keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    onnx.save(model, str(path))


def export_dynamo(model: torch.nn.Module, x: torch.Tensor, path: Path, input_name: str = "input",
                  output_names=None, batch_dim: bool = True) -> None:
    import onnxscript

    if tuple(int(v) for v in onnxscript.__version__.split(".")[:2]) < MIN_ONNXSCRIPT:
        raise SystemExit(f"onnxscript {onnxscript.__version__} is too old for torch {torch.__version__}'s "
                         "dynamo exporter (needs onnxscript._framework_apis.torch_2_11, onnxscript >= 0.6)")
    if path.parent.exists():
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = ({0: torch.export.Dim("batch")},) if batch_dim else None
    torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=True, input_names=[input_name],
                      output_names=output_names or OUTPUT_NAMES, dynamic_shapes=dynamic)
    strip_stack_traces(path)


# a. TorchScript exporter, opset 13, BN folded ----------------------------------------------------


def gen_torchscript(out: Path, manifest: Manifest) -> None:
    maker = f"{SCRIPT}:gen_torchscript"
    manifest.drop_maker(maker)
    inputs, outputs = w8_reference()
    path = out / "manet_w8_torchscript_op13.onnx"
    export_torchscript(w8_model(), w8_input(), path)
    note = check_onnx(path, inputs, outputs)
    manifest.add(path, maker, MODEL_SEED,
                 f"MA-Net width 8, 7 classes, 1x3x224x224 input with dynamic batch `batch`; TorchScript exporter "
                 f"opset 13, default constant folding (BN folded into Conv); {note}; ops {op_histogram(path)}")
    for f in write_test_data(out / "manet_w8_torchscript_op13" / "test_data_set_0", inputs, outputs):
        manifest.add(f, maker, INPUT_SEED, "batch 2, uniform [0,1) input; PyTorch eval-mode outputs")


# b. TorchScript exporter, BN kept with state_dict names -------------------------------------------


def gen_torchscript_bn(out: Path, manifest: Manifest) -> None:
    import onnx

    maker = f"{SCRIPT}:gen_torchscript_bn"
    manifest.drop_maker(maker)
    inputs, outputs = w8_reference()
    model = w8_model()
    path = out / "manet_w8_torchscript_op13_bn.onnx"
    export_torchscript(model, w8_input(), path, do_constant_folding=False)
    note = check_onnx(path, inputs, outputs)

    proto = onnx.load(str(path))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name in state}
    missing = sorted(set(state) - set(inits))
    mismatched = [k for k, v in inits.items() if not np.array_equal(v, state[k].numpy())]
    bn_nodes = sum(n.op_type == "BatchNormalization" for n in proto.graph.node)
    if missing or mismatched or bn_nodes == 0:
        raise AssertionError(f"{path}: BN not kept by name (missing {missing[:5]}, mismatched {mismatched[:5]}, "
                             f"{bn_nodes} BatchNormalization nodes)")
    extra = [i.name for i in proto.graph.initializer if i.name not in state]
    manifest.add(path, maker, MODEL_SEED,
                 f"same model as manet_w8_torchscript_op13.onnx; TorchScript exporter opset 13, eval mode, "
                 f"do_constant_folding=False: {bn_nodes} BatchNormalization nodes (inference form) kept and all "
                 f"{len(state)} state_dict keys except num_batches_tracked are initializers with identical "
                 f"names and bits ({len(extra)} other initializers); {note}; ops {op_histogram(path)}")
    for f in write_test_data(out / "manet_w8_torchscript_op13_bn" / "test_data_set_0", inputs, outputs):
        manifest.add(f, maker, INPUT_SEED, "batch 2, uniform [0,1) input; PyTorch eval-mode outputs")


# c. dynamo exporter, external data ---------------------------------------------------------------


def gen_dynamo(out: Path, manifest: Manifest) -> None:
    import onnx

    maker = f"{SCRIPT}:gen_dynamo"
    manifest.drop_maker(maker)
    inputs, outputs = w8_reference()
    folder = out / "manet_w8_dynamo"
    path = folder / "model.onnx"
    if folder.exists():
        shutil.rmtree(folder)
    export_dynamo(w8_model(), w8_input(), path)
    note = check_onnx(path, inputs, outputs)
    proto = onnx.load(str(path), load_external_data=False)
    external = sum(i.data_location == onnx.TensorProto.EXTERNAL for i in proto.graph.initializer)
    bn_nodes = sum(n.op_type == "BatchNormalization" for n in proto.graph.node)
    manifest.add(path, maker, MODEL_SEED,
                 f"same model; dynamo exporter (torch.export, default opset) opsets {opsets(path)}, ir_version "
                 f"{proto.ir_version}, external_data=True: {external} of {len(proto.graph.initializer)} "
                 f"initializers in model.onnx.data; default optimize=True folded BN into Conv ({bn_nodes} "
                 f"BatchNormalization nodes): Conv weights keep the state_dict name (e.g. `conv1.weight`) but hold "
                 f"FOLDED values, plus new `<name>_bias` initializers; Split uses num_outputs, ReduceMax/ReduceMean "
                 f"take axes as an input; node stack-trace metadata stripped; {note}; ops {op_histogram(path)}")
    manifest.add(folder / "model.onnx.data", maker, MODEL_SEED, "external data of model.onnx")
    for f in write_test_data(folder / "test_data_set_0", inputs, outputs):
        manifest.add(f, maker, INPUT_SEED, "batch 2, uniform [0,1) input; PyTorch eval-mode outputs")


# d. safetensors state_dict -------------------------------------------------------------------------


def gen_safetensors(out: Path, manifest: Manifest) -> None:
    from safetensors.torch import load_file, save_file

    maker = f"{SCRIPT}:gen_safetensors"
    manifest.drop_maker(maker)
    state = {k: v.contiguous() for k, v in w8_model().state_dict().items()}
    path = out / "manet_w8.safetensors"
    # One metadata key only: safetensors writes its metadata map in hash order, so more keys would make
    # the bytes differ from run to run.
    save_file(state, str(path), metadata={"format": "pt"})
    prefixed = out / "manet_w8_module_prefix.safetensors"
    save_file({f"module.{k}": v for k, v in state.items()}, str(prefixed), metadata={"format": "pt"})

    # The files load back into the reference model strictly and give the fixture outputs.
    inputs, outputs = w8_reference()
    for p in (path, prefixed):
        model = ref.MANet(7, 8)
        model.load_state_dict(ref.strip_module_prefix(load_file(str(p))), strict=True)
        with torch.no_grad():
            local, glob = model.eval()(torch.from_numpy(inputs["input"]))
        assert np.array_equal(local.numpy(), outputs["logits_local"]) and np.array_equal(glob.numpy(), outputs["logits_global"])
    n = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    manifest.add(path, maker, MODEL_SEED,
                 f"state_dict of the width-8 fixture model ({len(state)} entries incl. BN running stats and int64 "
                 f"num_batches_tracked; {n} parameters); loads strictly into tools/manet_reference.MANet(7, 8) and "
                 f"reproduces manet_w8_*/test_data_set_0 bit for bit")
    manifest.add(prefixed, maker, MODEL_SEED, "same tensors with DataParallel's `module.` key prefix")


# e. training parity ------------------------------------------------------------------------------


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def train_reference(init_state: dict, batches: list, lr: float, momentum: float, wd: float, dtype) -> dict:
    """PyTorch SGD on MA-Net width 8 in training mode; step-1 logits and gradients, losses, final BN stats."""
    model = ref.MANet(7, 8)
    model.load_state_dict(init_state, strict=True)
    model.to(dtype).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    result: dict = {"losses": []}
    for k, (x, y) in enumerate(batches):
        optimizer.zero_grad()
        local, glob = model(x.to(dtype))
        loss = ref.manet_loss(local, glob, y)
        loss.backward()
        result["losses"].append(float(loss.item()))
        if k == 0:
            result["logits_local"], result["logits_global"] = local.detach().clone(), glob.detach().clone()
            result["grads"] = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
        optimizer.step()
    result["bn_state"] = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
                          if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    return result


def gen_training(out: Path, manifest: Manifest) -> None:
    """Five PyTorch SGD steps of MA-Net width 8 on fixed 64x64 batches, starting from manet_w8.safetensors."""
    from safetensors.torch import load_file, save_file

    maker = f"{SCRIPT}:gen_training"
    manifest.drop_maker(maker)
    init_path = out / "manet_w8.safetensors"
    if not init_path.exists():
        gen_safetensors(out, manifest)
    folder = out / "training_w8"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    make_deterministic()
    init_state = load_file(str(init_path))
    steps, batch, size, lr, momentum, wd = 5, 4, 64, 0.01, 0.9, 1e-4
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    batches = [(torch.rand(batch, 3, size, size, generator=gen), torch.randint(0, 7, (batch,), generator=gen))
               for _ in range(steps)]
    files = []
    for k, (x, y) in enumerate(batches):
        for name, arr in ((f"batch_{k}_input", x.numpy()), (f"batch_{k}_target", y.numpy())):
            write_pb(folder / f"{name}.pb", arr, name)
            files.append(folder / f"{name}.pb")

    run = train_reference(init_state, batches, lr, momentum, wd, torch.float32)
    save_file(run["grads"], str(folder / "grads_step1.safetensors"))
    write_pb(folder / "step1_logits_local.pb", run["logits_local"].numpy(), "logits_local")
    write_pb(folder / "step1_logits_global.pb", run["logits_global"].numpy(), "logits_global")
    save_file(run["bn_state"], str(folder / "bn_stats_step5.safetensors"))
    files += [folder / "grads_step1.safetensors", folder / "step1_logits_local.pb", folder / "step1_logits_global.pb",
              folder / "bn_stats_step5.safetensors"]
    losses = run["losses"]
    step1 = {"loss": losses[0]}

    # How far PyTorch's own float32 run is from the same run in float64: a floor for any float32
    # implementation, and a guard against a seed whose trajectory hits a gradient discontinuity
    # (near-tied max / ReLU) and so amplifies rounding (seeds 11 and 13 did: 1e-4 .. 7e-4 loss drift).
    run64 = train_reference(init_state, batches, lr, momentum, wd, torch.float64)
    loss_rel = max(abs(a - b) / abs(b) for a, b in zip(losses, run64["losses"]))
    grad_rel = max(rel_l2(run["grads"][k], run64["grads"][k]) for k in run["grads"])
    bn_rel = max(rel_l2(run["bn_state"][k], run64["bn_state"][k]) for k in run["bn_state"]
                 if not k.endswith("num_batches_tracked"))
    float64_check = {"max_loss_rel": loss_rel, "max_grad_rel_l2": grad_rel, "max_bn_stat_rel_l2": bn_rel}
    print(f"  float32 vs float64 PyTorch: {float64_check}")
    if loss_rel > 1e-5 or grad_rel > 1e-4 or bn_rel > 1e-5:
        raise SystemExit(f"training seed {TRAIN_SEED} is ill-conditioned (float32 vs float64: {float64_check}); "
                         "pick another TRAIN_SEED")

    meta = {
        "what": "PyTorch reference of 5 SGD steps of MA-Net for the Swift trainer's parity test (issue 4 item 8)",
        "model": {"name": "MA-Net", "width": 8, "num_classes": 7, "input": [batch, 3, size, size],
                  "reference": "tools/manet_reference.py MANet(num_classes=7, width=8)"},
        "initial_weights": {"path": "../manet_w8.safetensors", "sha256": sha256(init_path),
                            "note": "full state_dict incl. non-trivial BN running stats; every BN in training mode "
                                    "uses batch statistics and updates its running stats (momentum 0.1, spatial-gate "
                                    "BN 0.01; unbiased variance into running_var)"},
        "batches": [{"input": f"batch_{k}_input.pb", "target": f"batch_{k}_target.pb"} for k in range(steps)],
        "batch_note": "inputs uniform [0,1) float32 [4,3,64,64]; targets int64 [4] in 0..6; no augmentation; step k "
                      "uses batch k",
        "loss": "0.6 * cross_entropy(logits_local, target) + 0.4 * cross_entropy(logits_global, target), mean "
                "over the batch",
        "beta": ref.BETA,
        "optimizer": {"type": "torch.optim.SGD", "lr": lr, "momentum": momentum, "weight_decay": wd,
                      "dampening": 0.0, "nesterov": False,
                      "semantics": "g += wd * p; buf = g at step 1, else momentum * buf + g; p -= lr * buf"},
        "mode": "model.train() for all steps (BN uses batch statistics)",
        "losses": losses,
        "losses_note": "losses[k] is the loss of the forward pass of step k+1, before that step's update",
        "step1": {"loss": step1["loss"], "logits_local": "step1_logits_local.pb",
                  "logits_global": "step1_logits_global.pb",
                  "grads": "grads_step1.safetensors",
                  "grads_note": "gradient of the step-1 loss w.r.t. every parameter (named_parameters), before "
                                "weight decay is added"},
        "bn_stats_after_5_steps": "bn_stats_step5.safetensors",
        "tolerances": {"grad_rel_l2": 1e-3, "loss_rel": 1e-4, "bn_stats_rel": 1e-4},
        "float32_vs_float64": float64_check,
        "float32_vs_float64_note": "the same 5 steps in float64 PyTorch vs these float32 files (relative L2 for "
                                   "tensors): how much of the tolerance rounding alone uses",
        "determinism": "torch.use_deterministic_algorithms(True), 1 thread, batches from torch.Generator seed "
                       + str(TRAIN_SEED),
        "versions": manifest.versions,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    files.append(folder / "meta.json")
    print(f"  training losses {losses}")
    for f in files:
        manifest.add(f, maker, TRAIN_SEED, "training parity fixture, see training_w8/meta.json")


# f. operator gradients ---------------------------------------------------------------------------


def gen_opgrad(out: Path, manifest: Manifest) -> None:
    import opgrad_cases

    maker = f"{SCRIPT}:gen_opgrad"
    manifest.drop_maker(maker)
    root = out / "opgrad"
    if root.exists():
        shutil.rmtree(root)
    make_deterministic()
    for case in opgrad_cases.CASES:
        files, note = opgrad_cases.write_case(root, case, write_pb)
        for f in files:
            manifest.add(f, maker, case.seed, note)


# g. torchvision classifiers ----------------------------------------------------------------------


def gen_torchvision(out: Path, manifest: Manifest) -> None:
    import torchvision_fixtures

    maker = f"{SCRIPT}:gen_torchvision"
    manifest.drop_maker(maker)
    root = out / "torchvision"
    if root.exists():
        shutil.rmtree(root)
    make_deterministic()
    for spec in torchvision_fixtures.SPECS:
        model, x, note = torchvision_fixtures.build(spec)
        with torch.no_grad():
            want = model(x).numpy()
        inputs, outputs = {"input": x.numpy()}, {"logits": want}
        ts = root / f"{spec.name}_torchscript_op13.onnx"
        export_torchscript_plain(model, x, ts)
        ts_note = check_onnx(ts, inputs, outputs)
        manifest.add(ts, maker, spec.seed, f"{note}; TorchScript exporter opset 13, dynamic batch; {ts_note}; "
                                           f"ops {op_histogram(ts)}")
        for f in write_test_data(root / f"{spec.name}_torchscript_op13" / "test_data_set_0", inputs, outputs):
            manifest.add(f, maker, spec.seed, "batch 2, uniform [0,1) input; PyTorch eval-mode outputs")
        dyn = root / f"{spec.name}_dynamo" / "model.onnx"
        export_dynamo(model, x, dyn, output_names=["logits"])
        dyn_note = check_onnx(dyn, inputs, outputs)
        manifest.add(dyn, maker, spec.seed, f"{note}; dynamo exporter opsets {opsets(dyn)}, external data; "
                                            f"{dyn_note}; ops {op_histogram(dyn)}")
        if (dyn.parent / "model.onnx.data").exists():
            manifest.add(dyn.parent / "model.onnx.data", maker, spec.seed, "external data of model.onnx")
        for f in write_test_data(dyn.parent / "test_data_set_0", inputs, outputs):
            manifest.add(f, maker, spec.seed, "batch 2, uniform [0,1) input; PyTorch eval-mode outputs")


def export_torchscript_plain(model: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


GENERATORS = {
    "torchscript": gen_torchscript,
    "torchscript_bn": gen_torchscript_bn,
    "dynamo": gen_dynamo,
    "safetensors": gen_safetensors,
    "training": gen_training,
    "opgrad": gen_opgrad,
    "torchvision": gen_torchvision,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--only", action="append", default=[],
                        help="generator(s) to run, comma-separated or repeated: " + ", ".join(GENERATORS))
    parser.add_argument("--list", action="store_true", help="list the generators and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(GENERATORS))
        return
    names = [n for o in args.only for n in o.split(",") if n] or list(GENERATORS)
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        parser.error(f"unknown generator(s) {unknown}; known: {', '.join(GENERATORS)}")
    make_deterministic()
    out = args.outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out)
    for name in names:
        print(f"[make_fixtures] {name}", flush=True)
        GENERATORS[name](out, manifest)
        manifest.write()
    big = [(p, p.stat().st_size) for p in out.rglob("*") if p.is_file() and p.stat().st_size >= 5 << 20]
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"[make_fixtures] {out}: {total / 1e6:.1f} MB in total")
    if big:
        raise SystemExit(f"files of 5 MB or more: {big}")


if __name__ == "__main__":
    main()
