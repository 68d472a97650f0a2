"""Reference timings for tools/bench: onnxruntime inference and PyTorch eager inference / training of MA-Net.

Usage (one measurement per process, so that each peak RSS is its own):
  python tools/bench_reference.py ort MODEL.onnx --batch N --iterations K [--warmup W] [--threads T]
  python tools/bench_reference.py torch-infer --batch N --iterations K [--width 64] [--threads T]
  python tools/bench_reference.py torch-train --batch N --iterations K [--width 64] [--threads T]

Prints one JSON object with the same keys as `manet bench --json`: iterations_ms, min_ms, median_ms,
images_per_second, peak_rss_bytes (VmHWM of this process), cpu_median_ms (process CPU per iteration). `ort` needs onnxruntime (tools/.venv);
the torch modes need torch (the torch venv) and tools/manet_reference.py. Inputs are uniform [0, 1)
from a fixed seed. Training is the authors' step: both heads' cross-entropy weighted by beta,
backward, SGD(lr 0.01, momentum 0.9, weight decay 1e-4), in train mode (BN batch statistics).
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


def run_ort(args) -> dict:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds = {}
    for i in session.get_inputs():
        shape = [args.batch if (k == 0 or not isinstance(d, int)) else d for k, d in enumerate(i.shape)]
        feeds[i.name] = rng.random(shape, dtype=np.float32)
    times = measure(lambda: session.run(None, feeds), args.warmup, args.iterations)
    return report("ort", args.batch, args.threads, times)


def torch_model(args):
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["ort", "torch-infer", "torch-train"])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=224)
    args = parser.parse_args()
    if args.mode == "ort" and args.model is None:
        parser.error("ort needs MODEL.onnx")
    result = {"ort": run_ort, "torch-infer": run_torch_infer, "torch-train": run_torch_train}[args.mode](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
