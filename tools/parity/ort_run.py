#!/usr/bin/env python3
"""Runs an ONNX model in onnxruntime on input_K.pb / input_K.npy files; writes output_K.pb.

Usage: ort_run.py MODEL INDIR OUTDIR [--values]

`manet verify --against onnxruntime` calls this with the tools venv's python. Inputs map by
position to the session's inputs (graph inputs that are not initializers), unless a .pb names
one of them. Outputs are written in graph-output order, each TensorProto named after its
output, so the Swift side can match by name. Errors go to stderr with exit code 2.

--values (`manet verify --layers`): runs a copy of the model in which every named node output
is also a graph output, and writes each intermediate value as OUTDIR/<file name>.pb, the
TensorProto named after the value. The file name is the value name with every character
outside [A-Za-z0-9._-] (and a leading '.') replaced by '_' (ReferenceData.fileStem in Swift);
names that still collide get '__2', '__3', ... The TensorProto's name is what identifies it.
"""
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def read_inputs(folder):
    found = {}
    for name in os.listdir(folder):
        m = re.fullmatch(r"input_(\d+)\.(pb|npy)", name)
        if m:
            index = int(m.group(1))
            if index in found:
                fail(f"{folder}: two files for input {index}")
            found[index] = os.path.join(folder, name)
    tensors = []
    for k in range(len(found)):
        if k not in found:
            fail(f"{folder}: input_{k} is missing")
        path = found[k]
        if path.endswith(".npy"):
            tensors.append(("", np.load(path, allow_pickle=False)))
        else:
            proto = onnx.load_tensor(path)
            tensors.append((proto.name, numpy_helper.to_array(proto)))
    return tensors


def file_stem(name):
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if stem.startswith("."):
        stem = "_" + stem[1:]
    # input_K / output_K are the test-data convention's files, not values.
    if re.fullmatch(r"(input|output)_\d+", stem):
        stem = "value_" + stem
    return stem


def with_values_as_outputs(model_path):
    """The model, with every named node output that is not a graph output added as one."""
    model = onnx.load(model_path)
    outputs = {o.name for o in model.graph.output}
    added = []
    for node in model.graph.node:
        for name in node.output:
            if name and name not in outputs:
                outputs.add(name)
                added.append(name)
                # Type and shape left empty: onnxruntime infers them.
                model.graph.output.append(onnx.ValueInfoProto(name=name))
    return model.SerializeToString(), added


def main(argv):
    args = [a for a in argv[1:] if a != "--values"]
    values = len(args) != len(argv) - 1
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, in_dir, out_dir = args
    options = ort.SessionOptions()
    # The interpreter is compared with onnxruntime's kernels, not with its graph rewrites.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    added = []
    if values:
        model_bytes, added = with_values_as_outputs(model_path)
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    else:
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {}
    for k, (name, array) in enumerate(read_inputs(in_dir)):
        target = name if name in names else (names[k] if k < len(names) else None)
        if target is None:
            fail(f"{in_dir}: input_{k} has no graph input to go to ({len(names)} inputs)")
        feeds[target] = array
    added_set = set(added)
    output_names = [o.name for o in session.get_outputs() if o.name not in added_set]
    results = session.run(output_names + added, feeds)
    os.makedirs(out_dir, exist_ok=True)
    for k, (name, value) in enumerate(zip(output_names, results)):
        tensor = numpy_helper.from_array(np.asarray(value), name=name)
        with open(os.path.join(out_dir, f"output_{k}.pb"), "wb") as f:
            f.write(tensor.SerializeToString())
    used = set()
    for name, value in zip(added, results[len(output_names):]):
        stem, n = file_stem(name), 1
        while (stem if n == 1 else f"{stem}__{n}") in used:
            n += 1
        stem = stem if n == 1 else f"{stem}__{n}"
        used.add(stem)
        tensor = numpy_helper.from_array(np.asarray(value), name=name)
        with open(os.path.join(out_dir, stem + ".pb"), "wb") as f:
            f.write(tensor.SerializeToString())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SystemExit:
        raise
    except Exception as error:  # onnxruntime's own errors: one line, exit 2
        print(f"onnxruntime: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)
