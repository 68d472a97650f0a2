"""Operator gradient cases: tiny one- or two-node ONNX graphs with PyTorch autograd references.

Each case becomes `opgrad/<name>/` with `meta.json` (nodes with their ONNX attributes, opset, input
and output names, which of them carry gradients), `model.onnx` (the same nodes as an ONNX graph,
checked by onnx.checker and run by onnxruntime where it can), and ONNX TensorProtos: `input_K.pb`,
`output_K.pb`, `grad_output_K.pb` (the random upstream gradient of output K) and `grad_input_K.pb`
(the gradient PyTorch's autograd gives input K). Used by make_fixtures.py (`--only opgrad`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

INT64_MAX = 2**63 - 1


@dataclass
class Input:
    name: str
    value: Callable[[torch.Generator], torch.Tensor]  # float inputs get gradients unless grad=False
    grad: bool = True


@dataclass
class Case:
    name: str
    opset: int
    nodes: list[dict]             # {"op_type", "inputs", "outputs", "attributes"}
    inputs: list[Input]
    outputs: list[str]
    torch_fn: Callable[..., tuple]  # PyTorch reference: tensors in input order -> outputs in order
    grad_outputs: list[bool] | None = None  # which outputs get an upstream gradient (default: all)
    note: str = ""
    seed: int = 0
    ort_expected_to_differ: str = ""  # why onnxruntime's forward may legitimately disagree
    extra: dict = field(default_factory=dict)


def randn(*shape: int) -> Callable[[torch.Generator], torch.Tensor]:
    return lambda g: torch.randn(*shape, generator=g)


def ints(*values: int) -> Callable[[torch.Generator], torch.Tensor]:
    return lambda g: torch.tensor(values, dtype=torch.int64)


def ties(*shape: int, levels: int = 3) -> Callable[[torch.Generator], torch.Tensor]:
    """Small integers as floats: many exact ties."""
    return lambda g: torch.randint(0, levels, shape, generator=g).to(torch.float32)


def relu_like(*shape: int) -> Callable[[torch.Generator], torch.Tensor]:
    """ReLU outputs: about half exact zeros, so max-pool windows often tie at 0."""
    return lambda g: torch.relu(torch.randn(*shape, generator=g))


def node(op_type: str, inputs: list[str], outputs: list[str], **attributes) -> dict:
    return {"op_type": op_type, "inputs": inputs, "outputs": outputs, "attributes": attributes}


def conv_case(name, x, w, b, strides=(1, 1), pads=(0, 0), dilations=(1, 1), group=1, note=""):
    """pads are PyTorch's symmetric (h, w) padding; the ONNX node gets [h, w, h, w]."""
    kernel = list(w[2:])
    inputs = [Input("X", randn(*x)), Input("W", randn(*w))] + ([Input("B", randn(w[0]))] if b else [])
    attrs = dict(kernel_shape=kernel, strides=list(strides), pads=[pads[0], pads[1], pads[0], pads[1]],
                 dilations=list(dilations), group=group)
    fn = lambda X, W, B=None: (F.conv2d(X, W, B, stride=strides, padding=pads, dilation=dilations, groups=group),)
    return Case(name, 13, [node("Conv", [i.name for i in inputs], ["Y"], **attrs)], inputs, ["Y"], fn, note=note)


def bn_training_case(name, shape, torch_momentum, note):
    c = shape[1]

    def fn(X, scale, B, mean, var):
        running_mean, running_var = mean.clone(), var.clone()
        y = F.batch_norm(X, running_mean, running_var, scale, B, training=True, momentum=torch_momentum, eps=1e-5)
        return y, running_mean, running_var

    inputs = [Input("X", randn(*shape)),
              Input("scale", lambda g: 1 + 0.2 * torch.randn(c, generator=g)),
              Input("B", lambda g: 0.1 * torch.randn(c, generator=g)),
              Input("input_mean", lambda g: 0.1 * torch.randn(c, generator=g), grad=False),
              Input("input_var", lambda g: torch.exp(0.2 * torch.randn(c, generator=g)), grad=False)]
    nodes = [node("BatchNormalization", [i.name for i in inputs], ["Y", "running_mean", "running_var"],
                  epsilon=1e-5, momentum=1 - torch_momentum, training_mode=1)]
    return Case(name, 15, nodes, inputs, ["Y", "running_mean", "running_var"], fn,
                grad_outputs=[True, False, False], note=note,
                ort_expected_to_differ="onnxruntime runs training_mode=1 and agrees on Y and running_mean, but "
                                       "puts the BIASED batch variance into running_var; PyTorch (these files) "
                                       "the unbiased one")


def maxpool_case(name, x, k, s, p, ceil=False, dilation=1, value=None, note=""):
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], ceil_mode=int(ceil),
                 dilations=[dilation, dilation])
    fn = lambda X: (F.max_pool2d(X, k, s, p, dilation=dilation, ceil_mode=ceil),)
    return Case(name, 13, [node("MaxPool", ["X"], ["Y"], **attrs)], [Input("X", value or randn(*x))], ["Y"], fn,
                note=note)


def avgpool_case(name, x, k, s, p, include_pad, ceil=False, note="", differ=""):
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], ceil_mode=int(ceil),
                 count_include_pad=int(include_pad))
    fn = lambda X: (F.avg_pool2d(X, k, s, p, ceil_mode=ceil, count_include_pad=include_pad),)
    return Case(name, 13, [node("AveragePool", ["X"], ["Y"], **attrs)], [Input("X", randn(*x))], ["Y"], fn,
                note=note, ort_expected_to_differ=differ)


def _cases() -> list[Case]:
    cases = [
        conv_case("conv_stride2_pad1_bias", (2, 3, 7, 7), (4, 3, 3, 3), True, strides=(2, 2), pads=(1, 1)),
        conv_case("conv_dilation2_pad2", (1, 2, 9, 9), (3, 2, 3, 3), False, pads=(2, 2), dilations=(2, 2)),
        conv_case("conv_groups2_bias", (2, 4, 6, 6), (6, 2, 3, 3), True, pads=(1, 1), group=2),
        conv_case("conv_depthwise_stride2", (2, 4, 7, 7), (4, 1, 3, 3), True, strides=(2, 2), pads=(1, 1), group=4,
                  note="depthwise: group = in channels = out channels"),
        conv_case("conv_7x7_stride2_pad3", (1, 3, 12, 12), (2, 3, 7, 7), False, strides=(2, 2), pads=(3, 3),
                  note="MA-Net's stem geometry"),
        conv_case("conv_1x1_stride2", (2, 4, 5, 5), (6, 4, 1, 1), False, strides=(2, 2),
                  note="MA-Net's downsample shortcut"),
        conv_case("conv_rect_kernel_strides", (1, 2, 6, 8), (3, 2, 2, 3), True, strides=(1, 2), pads=(0, 1)),
        conv_case("conv_spatial_gate_7x7", (2, 2, 5, 5), (1, 2, 7, 7), False, pads=(3, 3),
                  note="CBAM spatial gate: 2 -> 1 channels, 7x7, pad 3, kernel larger than the map"),
        bn_training_case("batchnorm_training", (4, 3, 5, 5), 0.1,
                         "training mode: normalise with the biased batch variance; running_mean/var outputs follow "
                         "PyTorch: running = (1 - m) * running + m * batch stat with m = 0.1 (ONNX momentum 0.9 = 1 - m), "
                         "and the UNBIASED batch variance (n / (n - 1)) goes into running_var"),
        bn_training_case("batchnorm_training_spatial_gate", (4, 1, 5, 5), 0.01,
                         "CBAM spatial-gate BN: 1 channel, PyTorch momentum 0.01 (ONNX momentum 0.99); PyTorch "
                         "running-stat semantics as in batchnorm_training"),
        Case("batchnorm_inference", 15,
             [node("BatchNormalization", ["X", "scale", "B", "input_mean", "input_var"], ["Y"], epsilon=1e-5,
                   momentum=0.9)],
             [Input("X", randn(2, 3, 4, 4)), Input("scale", lambda g: 1 + 0.2 * torch.randn(3, generator=g)),
              Input("B", lambda g: 0.1 * torch.randn(3, generator=g)),
              Input("input_mean", lambda g: 0.1 * torch.randn(3, generator=g), grad=False),
              Input("input_var", lambda g: torch.exp(0.2 * torch.randn(3, generator=g)), grad=False)],
             ["Y"], lambda X, s, B, m, v: (F.batch_norm(X, m, v, s, B, training=False, eps=1e-5),),
             note="inference mode (running statistics), gradients for X, scale and B"),
        maxpool_case("maxpool_k3_s2_p1", (2, 3, 8, 8), 3, 2, 1, note="MA-Net's stem max-pool"),
        maxpool_case("maxpool_k3_s2_p1_relu_ties", (2, 3, 8, 8), 3, 2, 1, value=relu_like(2, 3, 8, 8),
                     note="input as after ReLU (many exact zeros): windows tie. PyTorch sends each window's "
                          "gradient to ONE element, the first maximum in row-major window order (index from the "
                          "forward); gradients of overlapping windows accumulate"),
        maxpool_case("maxpool_k3_s2_ceil", (1, 2, 8, 8), 3, 2, 0, ceil=True,
                     note="ceil_mode: 4x4 output instead of 3x3"),
        maxpool_case("maxpool_k3_s2_p1_ceil", (1, 2, 8, 8), 3, 2, 1, ceil=True,
                     note="ceil_mode with padding: 5x5 output; the last window starts inside the padded input"),
        maxpool_case("maxpool_k3_dilation2_p1", (1, 2, 9, 9), 3, 1, 1, dilation=2,
                     note="effective kernel 5; PyTorch allows padding only up to kernel_size // 2"),
        avgpool_case("avgpool_k3_s2_p1_include_pad", (1, 2, 7, 7), 3, 2, 1, True),
        avgpool_case("avgpool_k3_s2_p1_exclude_pad", (1, 2, 7, 7), 3, 2, 1, False),
        avgpool_case("avgpool_k3_s2_p1_ceil_exclude_pad", (1, 2, 8, 8), 3, 2, 1, False, ceil=True),
        avgpool_case("avgpool_k3_s2_p1_ceil_include_pad", (1, 2, 8, 8), 3, 2, 1, True, ceil=True,
                     note="PyTorch divides a ceil-mode window that overhangs the padded input by its size clipped "
                          "to input + padding (6 on the last row/column here, 4 in the corner)",
                     differ="onnxruntime 1.23 divides every window by the full kernel size (9) when "
                            "count_include_pad=1, so its last row/column differ from PyTorch's by 1.5x (corner "
                            "2.25x); these files follow PyTorch"),
        Case("global_average_pool", 13, [node("GlobalAveragePool", ["X"], ["Y"])], [Input("X", randn(2, 3, 4, 5))],
             ["Y"], lambda X: (F.adaptive_avg_pool2d(X, 1),)),
        Case("global_max_pool", 13, [node("GlobalMaxPool", ["X"], ["Y"])], [Input("X", randn(2, 3, 4, 5))],
             ["Y"], lambda X: (F.adaptive_max_pool2d(X, 1),)),
        Case("global_max_pool_ties", 13, [node("GlobalMaxPool", ["X"], ["Y"])], [Input("X", ties(2, 3, 3, 3))],
             ["Y"], lambda X: (F.adaptive_max_pool2d(X, 1),),
             note="ties: F.adaptive_max_pool2d (the CBAM channel gate's max pool) gives the whole gradient to "
                  "one element, the first maximum in row-major order"),
        Case("gemm_transB", 13, [node("Gemm", ["A", "B", "C"], ["Y"], alpha=1.0, beta=1.0, transB=1)],
             [Input("A", randn(3, 5)), Input("B", randn(4, 5)), Input("C", randn(4))], ["Y"],
             lambda A, B, C: (F.linear(A, B, C),), note="nn.Linear as exported: Y = A B^T + C"),
        Case("split_opset13_split_input", 13, [node("Split", ["X", "split"], ["Y0", "Y1", "Y2"], axis=1)],
             [Input("X", randn(2, 8, 3, 3)), Input("split", ints(2, 2, 4), grad=False)], ["Y0", "Y1", "Y2"],
             lambda X, split: tuple(torch.split(X, [2, 2, 4], 1))),
        Case("split_opset18_num_outputs", 18, [node("Split", ["X"], ["Y0", "Y1", "Y2", "Y3"], axis=1, num_outputs=4)],
             [Input("X", randn(2, 8, 3, 3))], ["Y0", "Y1", "Y2", "Y3"], lambda X: tuple(torch.split(X, 2, 1)),
             note="the dynamo exporter's form of MulScaleBlock's split"),
        Case("slice_patch", 13, [node("Slice", ["X", "starts", "ends", "axes"], ["Y"])],
             [Input("X", randn(2, 3, 6, 6)), Input("starts", ints(3, 0), grad=False),
              Input("ends", ints(6, 3), grad=False), Input("axes", ints(2, 3), grad=False)], ["Y"],
             lambda X, *_: (X[:, :, 3:6, 0:3],), note="MA-Net's bottom-left patch: x[:, :, h/2:h, 0:w/2]"),
        Case("slice_negative_steps_axes", 13, [node("Slice", ["X", "starts", "ends", "axes", "steps"], ["Y"])],
             [Input("X", randn(2, 4, 7, 6)), Input("starts", ints(-6, 1), grad=False),
              Input("ends", ints(INT64_MAX, -1), grad=False), Input("axes", ints(-2, 1), grad=False),
              Input("steps", ints(2, 1), grad=False)], ["Y"],
             lambda X, *_: (X[:, 1:-1, -6::2, :],),
             note="negative starts/ends/axes, INT64_MAX end, step 2 (PyTorch has no negative steps)"),
        Case("concat_axis1", 13, [node("Concat", ["A", "B", "C"], ["Y"], axis=1)],
             [Input("A", randn(2, 1, 3, 3)), Input("B", randn(2, 2, 3, 3)), Input("C", randn(2, 3, 3, 3))], ["Y"],
             lambda A, B, C: (torch.cat([A, B, C], 1),)),
        Case("concat_patches_2x2", 13,
             [node("Concat", ["P1", "P2"], ["top"], axis=3), node("Concat", ["P3", "P4"], ["bottom"], axis=3),
              node("Concat", ["top", "bottom"], ["Y"], axis=2)],
             [Input(f"P{k}", randn(1, 2, 2, 2)) for k in (1, 2, 3, 4)], ["Y"],
             lambda a, b, c, d: (torch.cat([torch.cat([a, b], 3), torch.cat([c, d], 3)], 2),),
             note="MA-Net's re-assembly of the four local patches"),
        Case("reducemax_ties_torch_max_dim", 13, [node("ReduceMax", ["X"], ["Y"], axes=[1], keepdims=0)],
             [Input("X", ties(2, 4, 3, 3))], ["Y"], lambda X: (torch.max(X, 1)[0],),
             note="CBAM spatial gate's channel max as the authors write it, torch.max(x, 1)[0]: with ties the "
                  "whole gradient goes to ONE element, the first maximum along the axis (lowest index; CPU). "
                  "Both PyTorch exporters turn this into a plain ReduceMax, so the trainer must pick this rule"),
        Case("reducemax_ties_torch_amax", 18, [node("ReduceMax", ["X", "axes"], ["Y"], keepdims=1)],
             [Input("X", ties(2, 4, 3, 3)), Input("axes", ints(1), grad=False)], ["Y"],
             lambda X, axes: (torch.amax(X, 1, keepdim=True),),
             note="torch.amax: with ties the gradient is split EVENLY among the tied maxima (contrast "
                  "reducemax_ties_torch_max_dim, same input); opset-18 axes input"),
        Case("reducemean_axis1_keepdims", 18, [node("ReduceMean", ["X", "axes"], ["Y"], keepdims=1)],
             [Input("X", randn(2, 4, 3, 3)), Input("axes", ints(1), grad=False)], ["Y"],
             lambda X, axes: (torch.mean(X, 1, keepdim=True),), note="CBAM spatial gate's channel mean"),
        Case("relu_zeros", 13, [node("Relu", ["X"], ["Y"])], [Input("X", lambda g: torch.randint(-1, 2, (2, 3, 3, 3), generator=g).to(torch.float32))], ["Y"],
             lambda X: (torch.relu(X),),
             note="exact zeros in the input: PyTorch's ReLU gradient at 0 is 0"),
        Case("sigmoid", 13, [node("Sigmoid", ["X"], ["Y"])], [Input("X", randn(2, 4, 3, 3))], ["Y"],
             lambda X: (torch.sigmoid(X),)),
        Case("mul_channel_gate_broadcast", 13, [node("Mul", ["X", "G"], ["Y"])],
             [Input("X", randn(2, 4, 3, 3)), Input("G", randn(2, 4, 1, 1))], ["Y"], lambda X, G: (X * G,),
             note="broadcast over H, W: G's gradient sums over them"),
        Case("mul_spatial_gate_broadcast", 13, [node("Mul", ["X", "G"], ["Y"])],
             [Input("X", randn(2, 4, 3, 3)), Input("G", randn(2, 1, 3, 3))], ["Y"], lambda X, G: (X * G,),
             note="broadcast over channels: G's gradient sums over them"),
        Case("cbam_channel_gate_sigmoid_mul", 13,
             [node("Sigmoid", ["A"], ["S"]), node("Mul", ["X", "S"], ["Y"])],
             [Input("X", randn(2, 4, 3, 3)), Input("A", randn(2, 4, 1, 1))], ["Y"],
             lambda X, A: (X * torch.sigmoid(A),), note="CBAM channel gate: x * sigmoid(att), att [N, C, 1, 1]"),
        Case("cbam_spatial_gate_sigmoid_mul", 13,
             [node("Sigmoid", ["A"], ["S"]), node("Mul", ["X", "S"], ["Y"])],
             [Input("X", randn(2, 4, 3, 3)), Input("A", randn(2, 1, 3, 3))], ["Y"],
             lambda X, A: (X * torch.sigmoid(A),), note="CBAM spatial gate: x * sigmoid(att), att [N, 1, H, W]"),
    ]
    for k, case in enumerate(cases):
        case.seed = 100 + k
    return cases


CASES = _cases()


def onnx_model(case: Case, inputs: list[np.ndarray], outputs: list[np.ndarray]):
    import onnx
    from onnx import helper

    def info(name, array):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape))

    nodes = [helper.make_node(n["op_type"], n["inputs"], n["outputs"], name=f"{n['op_type']}_{k}", **n["attributes"])
             for k, n in enumerate(case.nodes)]
    graph = helper.make_graph(nodes, case.name, [info(i.name, a) for i, a in zip(case.inputs, inputs)],
                              [info(n, a) for n, a in zip(case.outputs, outputs)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)],
                              producer_name="tools/opgrad_cases.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_forward(model, case: Case, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> dict:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(case.outputs, {i.name: a for i, a in zip(case.inputs, inputs)})
    except Exception as error:  # noqa: BLE001 - recorded, judged against ort_expected_to_differ
        return {"ran": False, "error": str(error).splitlines()[0][:300]}
    diffs = [float(np.abs(g.astype(np.float64) - w).max()) if g.shape == w.shape else float("inf")
             for g, w in zip(got, outputs)]
    return {"ran": True, "max_abs_diff": diffs,
            "within_tolerance": all(d <= 1e-5 * max(1.0, float(np.abs(w).max())) for d, w in zip(diffs, outputs))}


def write_case(root: Path, case: Case, write_pb) -> tuple[list[Path], str]:
    gen = torch.Generator().manual_seed(case.seed)
    tensors = [i.value(gen) for i in case.inputs]
    for t, i in zip(tensors, case.inputs):
        if i.grad:
            t.requires_grad_(True)
    outs = case.torch_fn(*tensors)
    grad_flags = case.grad_outputs or [True] * len(outs)
    upstream = [torch.randn(o.shape, generator=gen) if flag else None for o, flag in zip(outs, grad_flags)]
    diff_inputs = [t for t, i in zip(tensors, case.inputs) if i.grad]
    grads = torch.autograd.grad([o for o, f in zip(outs, grad_flags) if f], diff_inputs,
                                [u for u in upstream if u is not None], allow_unused=False)

    folder = root / case.name
    folder.mkdir(parents=True, exist_ok=True)
    files = []

    def save(fname, array, name):
        write_pb(folder / fname, array, name)
        files.append(folder / fname)

    in_arrays = [t.detach().numpy() for t in tensors]
    out_arrays = [o.detach().numpy() for o in outs]
    for k, (i, a) in enumerate(zip(case.inputs, in_arrays)):
        save(f"input_{k}.pb", a, i.name)
    for k, (name, a) in enumerate(zip(case.outputs, out_arrays)):
        save(f"output_{k}.pb", a, name)
    for k, (name, u) in enumerate(zip(case.outputs, upstream)):
        if u is not None:
            save(f"grad_output_{k}.pb", u.numpy(), f"grad_{name}")
    grad_iter = iter(grads)
    for k, i in enumerate(case.inputs):
        if i.grad:
            save(f"grad_input_{k}.pb", next(grad_iter).numpy(), f"grad_{i.name}")

    model = onnx_model(case, in_arrays, out_arrays)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    files.append(folder / "model.onnx")
    ort_check = ort_forward(model, case, in_arrays, out_arrays)
    if not ort_check.get("within_tolerance") and not case.ort_expected_to_differ:
        print(f"  NOTE {case.name}: onnxruntime forward disagrees with PyTorch: {ort_check}")

    single = len(case.nodes) == 1
    meta = {
        "case": case.name,
        "op_type": case.nodes[0]["op_type"] if single else "+".join(n["op_type"] for n in case.nodes),
        "opset": case.opset,
        "attributes": case.nodes[0]["attributes"] if single else None,
        "nodes": case.nodes,
        "inputs": [{"index": k, "name": i.name, "file": f"input_{k}.pb", "shape": list(a.shape), "dtype": str(a.dtype),
                    "grad": f"grad_input_{k}.pb" if i.grad else None}
                   for k, (i, a) in enumerate(zip(case.inputs, in_arrays))],
        "outputs": [{"index": k, "name": n, "file": f"output_{k}.pb", "shape": list(a.shape),
                     "grad_output": f"grad_output_{k}.pb" if f else None}
                    for k, (n, a, f) in enumerate(zip(case.outputs, out_arrays, grad_flags))],
        "note": case.note,
        "reference": "PyTorch autograd, float32, CPU; grad_input_K = d(sum_k <output_k, grad_output_k>)/d input_K",
        "tolerance": {"grad_rel_l2": 1e-4},
        "onnxruntime_forward": ort_check,
        "onnxruntime_note": case.ort_expected_to_differ or None,
        "seed": case.seed,
        "torch": torch.__version__,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    files.append(folder / "meta.json")
    print(f"  {case.name}: {len(files)} files; onnxruntime forward {ort_check}")
    return files, f"opgrad case {case.name} ({meta['op_type']}, opset {case.opset}); see meta.json"
