"""Reference timings for tools/bench/bench: onnxruntime inference and PyTorch eager inference / training of MA-Net.

Usage (one measurement per process, so that each peak RSS is its own):
  python tools/bench/bench_reference.py ort MODEL.onnx --batch N --iterations K [--warmup W] [--threads T]
  python tools/bench/bench_reference.py openvino MODEL.onnx --batch N --iterations K [--warmup W] [--threads T]
  python tools/bench/bench_reference.py torch-infer --batch N --iterations K [--width 64] [--threads T]
  python tools/bench/bench_reference.py torch-train --batch N --iterations K [--width 64] [--threads T]
  python tools/bench/bench_reference.py memory-bound MODEL.onnx --batch N

Prints one JSON object with the same keys as `manet bench --json`: iterations_ms, min_ms, median_ms,
images_per_second, peak_rss_bytes (VmHWM of this process), cpu_median_ms (process CPU per iteration). `ort` needs onnxruntime (tools/.venv);
`openvino` needs openvino (CPU plugin, f32 inference precision, latency hint, T inference threads, the
batch's static shapes; tools/.venv-bench); the torch modes need torch (the torch venv) and tools/fixtures/manet_reference.py. Inputs are uniform [0, 1)
from a fixed seed. Training is the authors' step: both heads' cross-entropy weighted by beta,
backward, SGD(lr 0.01, momentum 0.9, weight decay 1e-4), in train mode (BN batch statistics).

`memory-bound` prints the performance issue's inference RSS bound instead: 1.3 x (weight bytes +
one batch's activations), the weights being the initializers' bytes and the activations every
value the graph computes (onnx shape inference with the batch dim set to N; values whose shape
stays unknown are counted in values_unknown and left out, which only lowers the bound).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


CPU_MS: list[float] = []  # process CPU time per timed iteration (all threads), filled by measure


def measure(fn, warmup: int, iterations: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        CPU_MS.append((time.process_time() - c0) * 1000)
    return times


def report(mode: str, batch: int, threads: int, times: list[float]) -> dict:
    median = statistics.median(times)
    return {"mode": mode, "batch": batch, "threads": threads, "iterations_ms": times, "min_ms": min(times),
            "median_ms": median, "images_per_second": batch * 1000 / median, "peak_rss_bytes": peak_rss_bytes(),
            "cpu_median_ms": statistics.median(CPU_MS)}


def random_feeds(inputs: list[tuple[str, list]], batch: int) -> dict:
    """Uniform [0, 1) float32 inputs from a fixed seed, one per (name, dims) in graph order; dim 0
    and every dim that is not a number (symbolic or dynamic) are the batch. Shared by the inference
    runtimes so that each gets the same inputs."""
    import numpy as np

    rng = np.random.default_rng(1)
    return {name: rng.random([batch if (k == 0 or not isinstance(d, int)) else d for k, d in enumerate(dims)],
                             dtype=np.float32) for name, dims in inputs}


def run_ort(args) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    feeds = random_feeds([(i.name, list(i.shape)) for i in session.get_inputs()], args.batch)
    times = measure(lambda: session.run(None, feeds), args.warmup, args.iterations)
    return report("ort", args.batch, args.threads, times)


def run_openvino(args) -> dict:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(args.model))
    dims = lambda i: [d.get_length() if d.is_static else None for d in i.get_partial_shape()]
    feeds = random_feeds([(i.get_any_name(), dims(i)) for i in model.inputs], args.batch)
    # Static shapes of this batch, as OpenVINO's own benchmark_app does: its CPU plugin plans
    # memory and picks kernels for a static graph, the strongest setting for a reference.
    model.reshape({name: list(x.shape) for name, x in feeds.items()})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                 "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    times = measure(lambda: request.infer(feeds), args.warmup, args.iterations)
    return report("openvino", args.batch, args.threads, times)


def torch_model(args):
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
    import manet_reference as ref

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    model = ref.build_manet(num_classes=7, width=args.width, seed=0)
    x = torch.rand(args.batch, 3, args.input_size, args.input_size, generator=torch.Generator().manual_seed(2))
    return torch, ref, model, x


def run_torch_infer(args) -> dict:
    torch, _, model, x = torch_model(args)
    model.eval()

    def step():
        with torch.no_grad():
            model(x)

    return report("torch-infer", args.batch, args.threads, measure(step, args.warmup, args.iterations))


def run_torch_train(args) -> dict:
    torch, ref, model, x = torch_model(args)
    model.train()
    target = torch.arange(args.batch) % 7
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        optimizer.zero_grad()
        local, glob = model(x)
        loss = ref.manet_loss(local, glob, target)
        loss.backward()
        optimizer.step()

    return report("torch-train", args.batch, args.threads, measure(step, args.warmup, args.iterations))


def memory_bound(args) -> dict:
    import numpy as np
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(args.model), load_external_data=False)
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if len(dims) > 0 and not dims[0].HasField("dim_value"):
            dims[0].dim_value = args.batch
    del model.graph.value_info[:]
    inferred = shape_inference.infer_shapes(model, data_prop=True)  # propagates computed Reshape shapes
    itemsize = lambda t: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t)).itemsize
    weights = sum(int(np.prod(t.dims, dtype=np.int64)) * itemsize(t.data_type) for t in inferred.graph.initializer)
    activations, counted, unknown = 0, 0, 0
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if not tt.HasField("shape") or None in dims:
            unknown += 1
            continue
        activations += int(np.prod(dims, dtype=np.int64)) * itemsize(tt.elem_type)
        counted += 1
    return {"mode": "memory-bound", "batch": args.batch, "weights_bytes": weights, "activation_bytes": activations,
            "values_counted": counted, "values_unknown": unknown, "bound_bytes": int(1.3 * (weights + activations))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["ort", "openvino", "torch-infer", "torch-train", "memory-bound"])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=224)
    args = parser.parse_args()
    if args.mode in ("ort", "openvino", "memory-bound") and args.model is None:
        parser.error(f"{args.mode} needs MODEL.onnx")
    result = {"ort": run_ort, "openvino": run_openvino, "torch-infer": run_torch_infer, "torch-train": run_torch_train,
              "memory-bound": memory_bound}[args.mode](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
