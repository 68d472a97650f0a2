#!/usr/bin/env python3
"""Writes ONNX's node conformance tests, from the pinned pip `onnx`, to OUTDIR.

Usage: tools/parity/gen_node_tests.py OUTDIR

Each test becomes OUTDIR/<name>/model.onnx plus test_data_set_N/input_K.pb and output_K.pb
(TensorProto), the layout `python -m onnx.backend.test.cmd_tools generate-data` writes. The
cases come from onnx's own API (`onnx.backend.test.case.node.collect_testcases`); this script
only serialises them. Cases whose inputs or outputs are sequences, maps or optionals (which
the Swift runtime does not model) are still written, with a NON_TENSOR_DATA file naming what
they hold instead of .pb files, so the runner can count them as skipped.

Idempotent: OUTDIR/STAMP records the onnx version and this script's hash; when it matches,
the script exits at once. Otherwise the tests are written to a fresh folder that replaces
OUTDIR only when complete.
"""

import hashlib
import importlib.metadata
import os
import shutil
import sys
import warnings


def stamp_text() -> str:
    # importlib.metadata, not `import onnx`: the up-to-date check must stay fast.
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return f"onnx {importlib.metadata.version('onnx')} generator {digest}\n"


def tensor_bytes(value):
    """TensorProto bytes for an array or TensorProto, or None for non-tensor values."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    if isinstance(value, TensorProto):
        return value.SerializeToString()
    if isinstance(value, np.ndarray) or np.isscalar(value):
        return numpy_helper.from_array(np.asarray(value)).SerializeToString()
    return None


def kind_of(value) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "sequence"
    if value is None:
        return "optional"
    return type(value).__name__


def write_case(case, folder: str) -> None:
    os.makedirs(folder)
    with open(os.path.join(folder, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    unsupported = []
    for i, (inputs, outputs) in enumerate(case.data_sets):
        data_dir = os.path.join(folder, f"test_data_set_{i}")
        os.makedirs(data_dir)
        for prefix, values in (("input", inputs), ("output", outputs)):
            for k, value in enumerate(values):
                data = tensor_bytes(value)
                if data is None:
                    unsupported.append(f"{prefix} {k} of data set {i} is a {kind_of(value)}")
                    continue
                with open(os.path.join(data_dir, f"{prefix}_{k}.pb"), "wb") as f:
                    f.write(data)
    if unsupported:
        with open(os.path.join(folder, "NON_TENSOR_DATA"), "w") as f:
            f.write("\n".join(unsupported) + "\n")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = os.path.abspath(sys.argv[1])
    stamp = os.path.join(out, "STAMP")
    wanted = stamp_text()
    if os.path.exists(stamp) and open(stamp).read() == wanted:
        return 0
    import onnx
    from onnx.backend.test.case import node as node_cases

    staging = out + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    # The case generators compute references with numpy and warn on purpose (1 / 0, ...).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = [c for c in node_cases.collect_testcases(None) if c.kind == "node"]
    for case in cases:
        write_case(case, os.path.join(staging, case.name))
    with open(os.path.join(staging, "STAMP"), "w") as f:
        f.write(wanted)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(staging, out)
    print(f"gen_node_tests: wrote {len(cases)} node tests from onnx {onnx.__version__} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
