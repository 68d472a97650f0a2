"""Makes fixtures/format/: tensors written with the `onnx` package's typed fields (float_data,
int32_data, int64_data, double_data, uint64_data, string_data), which our own writer never
produces, each next to the same values in raw_data, so ONNXFormatTests can check the C layer's
typed-field reader against an independent writer.

Usage: tools/.venv/bin/python tools/make_format_fixtures.py fixtures/format
Pinned by tools/requirements.txt (onnx 1.19.1, numpy 2.2.6). Deterministic: no randomness.
Records every file it writes in fixtures/MANIFEST (the format tools/make_fixtures.py uses),
replacing only its own lines.
"""

import hashlib
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

DIMS = [2, 3]

# Six values per type, chosen to exercise sign extension, the top bit, and exact float16/bfloat16.
VALUES = {
    TensorProto.FLOAT: [0.0, 1.5, -2.25, 3.0e38, -1.0e-38, 7.0],
    TensorProto.DOUBLE: [0.0, 1.5, -2.25, 1.0e300, -1.0e-300, 7.0],
    TensorProto.FLOAT16: [0.0, 1.5, -2.25, 65504.0, -0.5, 7.0],
    TensorProto.BFLOAT16: [0.0, 1.5, -2.25, 256.0, -0.5, 7.0],
    TensorProto.INT8: [0, 1, -1, 127, -128, 5],
    TensorProto.INT16: [0, 1, -1, 32767, -32768, 5],
    TensorProto.INT32: [0, 1, -1, 2**31 - 1, -(2**31), 5],
    TensorProto.INT64: [0, 1, -1, 2**63 - 1, -(2**63), 5],
    TensorProto.UINT8: [0, 1, 128, 255, 7, 5],
    TensorProto.UINT16: [0, 1, 32768, 65535, 7, 5],
    TensorProto.UINT32: [0, 1, 2**31, 2**32 - 1, 7, 5],
    TensorProto.UINT64: [0, 1, 2**63, 2**64 - 1, 7, 5],
    TensorProto.BOOL: [True, False, True, True, False, False],
    TensorProto.COMPLEX64: [0j, 1.5 + 2j, -2.25 - 1j, 3j, 4.0, -0.5j],
    TensorProto.COMPLEX128: [0j, 1.5 + 2j, -2.25 - 1j, 3j, 4.0, -0.5j],
}

NUMPY = {
    TensorProto.FLOAT: "<f4", TensorProto.DOUBLE: "<f8", TensorProto.FLOAT16: "<f2",
    TensorProto.INT8: "<i1", TensorProto.INT16: "<i2", TensorProto.INT32: "<i4", TensorProto.INT64: "<i8",
    TensorProto.UINT8: "<u1", TensorProto.UINT16: "<u2", TensorProto.UINT32: "<u4", TensorProto.UINT64: "<u8",
    TensorProto.BOOL: "?", TensorProto.COMPLEX64: "<c8", TensorProto.COMPLEX128: "<c16",
}


def raw_bytes(data_type, values):
    if data_type == TensorProto.BFLOAT16:
        # bfloat16 is the top half of float32; these values are exact, so truncation is exact.
        return b"".join(struct.pack("<H", struct.unpack("<I", struct.pack("<f", v))[0] >> 16) for v in values)
    return np.array(values, dtype=NUMPY[data_type]).tobytes()


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    initializers = []
    outputs = []
    for data_type, values in VALUES.items():
        name = TensorProto.DataType.Name(data_type).lower()
        typed = helper.make_tensor(f"typed_{name}", data_type, DIMS, values, raw=False)
        assert not typed.HasField("raw_data"), name
        raw = helper.make_tensor(f"raw_{name}", data_type, DIMS, raw_bytes(data_type, values), raw=True)
        initializers += [typed, raw]
    strings = helper.make_tensor("typed_string", TensorProto.STRING, [3], [b"a", b"", b"\xff\x00z"])
    initializers.append(strings)
    for t in initializers:
        outputs.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    # Identity-free graph: the initializers are the outputs, so the checker accepts the model.
    graph = helper.make_graph([], "typed_fields", [], outputs, initializer=initializers)
    model = helper.make_model(graph, producer_name="tools/make_format_fixtures.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out_dir, "typed_fields.onnx"))
    # One test-data style `.pb` in a typed field.
    with open(os.path.join(out_dir, "typed_float_tensor.pb"), "wb") as f:
        f.write(helper.make_tensor("x", TensorProto.FLOAT, [2, 2], [1.0, -2.0, 0.5, 4.0]).SerializeToString())
    make_bad_models(os.path.join(out_dir, "bad"))
    make_unsupported_ops_model(out_dir)


def make_unsupported_ops_model(out_dir):
    """A valid model whose operators the interpreter lacks (Det, Einsum): `manet inspect` must
    list every such node by name in one pass (CLITests)."""
    nodes = [
        helper.make_node("Det", ["x"], ["d"], name="det_first"),
        helper.make_node("Einsum", ["x", "x"], ["e"], name="einsum_second", equation="ij,jk->ik"),
        helper.make_node("Det", ["e"], ["d2"], name="det_third"),
    ]
    graph = helper.make_graph(
        nodes, "unsupported", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "n"])],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("d2", TensorProto.FLOAT, [])])
    model = helper.make_model(graph, producer_name="tools/make_format_fixtures.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(out_dir, "unsupported_ops.onnx"))


def relu_model(initializer=None, opsets=(("", 13),), node_domain=""):
    """A one-node model; the bad variants differ from it in exactly one way."""
    node = helper.make_node("Relu", ["x"], ["y"], name="relu", domain=node_domain)
    graph = helper.make_graph(
        [node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[initializer] if initializer is not None else [])
    model = helper.make_model(graph, producer_name="tools/make_format_fixtures.py",
                              opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    return model


def make_bad_models(out_dir):
    """Models that must be refused with a clear error (ONNXFormatTests.BadInputTests)."""
    os.makedirs(out_dir, exist_ok=True)

    def save(name, model):
        # onnx.save would refuse some of these; write the bytes directly.
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(model.SerializeToString())

    raw_length = TensorProto(name="weights", data_type=TensorProto.FLOAT, dims=[2], raw_data=b"\0" * 5)
    save("raw_length_mismatch.onnx", relu_model(raw_length))
    negative = TensorProto(name="weights", data_type=TensorProto.FLOAT, dims=[-1, 2])
    save("negative_dims.onnx", relu_model(negative))
    overflow = TensorProto(name="weights", data_type=TensorProto.FLOAT, dims=[2**62, 8, 2**40])
    save("overflowing_dims.onnx", relu_model(overflow))
    save("opset_99.onnx", relu_model(opsets=(("", 99),)))
    save("unknown_domain.onnx", relu_model(opsets=(("", 13), ("com.unknown", 1)), node_domain="com.unknown"))


MAKER = "tools/make_format_fixtures.py"


def update_manifest(out_dir, manifest):
    """Replaces this script's lines in MANIFEST (path, sha256, maker, versions, seed, note)."""
    fixtures_root = os.path.dirname(os.path.abspath(manifest))
    versions = f"onnx={onnx.__version__} numpy={np.__version__}"
    with open(manifest) as f:
        lines = f.read().splitlines()
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if l and not l.startswith("#") and not l.split("\t")[2:3][0].startswith(MAKER)]
    for root, _, files in os.walk(out_dir):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(os.path.abspath(path), fixtures_root)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            note = "must be refused (BadInputTests, CLITests)" if "/bad/" in "/" + rel else "ONNXFormatTests / CLITests"
            body.append(f"{rel}\t{digest}\t{MAKER}:main\t{versions}\tseed=none\t{note}")
    body.sort(key=lambda l: l.split("\t")[0])
    with open(manifest, "w") as f:
        f.write("\n".join(header + body) + "\n")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures/format"
    main(out)
    manifest = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(out)), "MANIFEST")
    update_manifest(out, manifest)
