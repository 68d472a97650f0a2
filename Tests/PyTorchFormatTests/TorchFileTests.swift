import Foundation
import ONNXIR
import PyTorchFormat
import TestSupport
import XCTest

final class TorchFileTests: XCTestCase {
    static func fixture(_ name: String) -> String { Fixtures.path("pth/" + name) }

    func entries(_ file: TorchFile) throws -> [String: TorchTensor] {
        let root = try XCTUnwrap(file.root.dict, "root is a dict")
        var out: [String: TorchTensor] = [:]
        for (k, v) in root.entries { if let key = k.string, let t = v.tensor { out[key] = t } }
        return out
    }

    /// Every dtype tensor equals its `_bits` companion byte for byte (after widening integers as the
    /// fixture script did), and every view equals its contiguous copy, in both formats.
    func testDtypesAndViewsMatchTorchsOwnCopies() throws {
        for name in ["dtypes_views.pth", "dtypes_views_legacy.pth"] {
            let file = try TorchFile(path: Self.fixture(name))
            XCTAssertEqual(file.format, name.contains("legacy") ? .legacy : .zip)
            let tensors = try entries(file)
            XCTAssertEqual(tensors.count, 32, name)
            for float in ["f32", "f64", "f16", "bf16"] {
                let t = try file.tensorData(try XCTUnwrap(tensors[float]), name: float)
                let bits = try file.tensorData(try XCTUnwrap(tensors[float + "_bits"]), name: float + "_bits")
                XCTAssertEqual(t.dims, [4, 6])
                XCTAssertEqual(t.bytes, bits.bytes, "\(name): \(float)")
                XCTAssertEqual(t.elementType, ["f32": .float, "f64": .double, "f16": .float16, "bf16": .bfloat16][float])
            }
            for int in ["i64", "i32", "i16", "i8", "u8", "bool"] {
                let t = try file.tensorData(try XCTUnwrap(tensors[int]), name: int)
                let bits = try file.tensorData(try XCTUnwrap(tensors[int + "_bits"]), name: int + "_bits")
                XCTAssertEqual(t.dims, [3, 5])
                if int == "bool" {
                    XCTAssertEqual(t.elementType, .bool)
                    XCTAssertEqual(t.bytes, bits.bytes, name)
                    continue
                }
                let size = t.elementType.byteSize!
                let widened: [Int64] = (0..<15).map { i in
                    var v: Int64 = 0
                    for b in 0..<size { v |= Int64(t.bytes[i * size + b]) << (8 * Int64(b)) }
                    let signed = t.elementType != .uint8
                    if signed, size < 8, v & (1 << (8 * Int64(size) - 1)) != 0 { v -= 1 << (8 * Int64(size)) }
                    return v
                }
                XCTAssertEqual(widened, bits.int64s, "\(name): \(int)")
            }
            for view in ["transposed", "sliced", "offset_row", "expanded", "shared_a", "scalar"] {
                let t = try XCTUnwrap(tensors[view])
                let expected = try file.tensorData(try XCTUnwrap(tensors[view + "_expected"]), name: view + "_expected")
                let actual = try file.tensorData(t, name: view)
                XCTAssertEqual(actual.dims, expected.dims, "\(name): \(view)")
                XCTAssertEqual(actual.floats, expected.floats, "\(name): \(view)")
            }
            // Views of one storage share it in the file, and each materialises on its own.
            XCTAssertEqual(tensors["transposed"]?.storage, tensors["shared_a"]?.storage)
            XCTAssertNotEqual(tensors["transposed"]?.strides, TorchTensor.contiguousStrides([12, 5]))
        }
    }

    /// The authors' checkpoint: storages tagged cuda:0 read as a location, a 0-d best_acc, the
    /// optimizer's state, and a `__main__.RecorderMeter` with numpy arrays kept opaque.
    func testAuthorsCheckpointReadsWithItsCustomObjectOpaque() throws {
        let file = try TorchFile(path: Self.fixture("authors_w4.pth.tar"))
        let root = try XCTUnwrap(file.root.dict)
        XCTAssertEqual(root.stringKeys, ["epoch", "state_dict", "best_acc", "optimizer", "recorder"])
        XCTAssertEqual(root["epoch"]?.int, 2)
        let best = try XCTUnwrap(root["best_acc"]?.tensor)
        XCTAssertEqual(best.storage.location, "cuda:0")
        XCTAssertEqual(try file.tensorData(best, name: "best_acc").floats, [42.5])
        let stateDict = try XCTUnwrap(root["state_dict"]?.dict)
        XCTAssertTrue(stateDict.ordered)
        XCTAssertEqual(stateDict.entries.count, 692)
        XCTAssertTrue(stateDict.stringKeys.allSatisfy { $0.hasPrefix("module.") })
        guard case .object(let recorder)? = root["recorder"], case let .global(module, name) = recorder.callable else {
            return XCTFail("recorder is not an opaque object")
        }
        XCTAssertEqual("\(module).\(name)", "__main__.RecorderMeter")
        XCTAssertNotNil(recorder.state?.dict?["epoch_losses"])
        XCTAssertTrue(file.globalsNamed.contains("__main__.RecorderMeter"))
        let optimizer = try XCTUnwrap(root["optimizer"]?.dict)
        let state = try XCTUnwrap(optimizer["state"]?.dict)
        XCTAssertFalse(state.entries.isEmpty)
        for (key, value) in state.entries {
            XCTAssertNotNil(key.int)
            XCTAssertNotNil(value.dict?["momentum_buffer"]?.tensor)
        }
    }

    /// Each malicious pickle is read as data (its call an opaque object) or refused; nothing runs.
    func testMaliciousPicklesAreDataOrRefused() throws {
        for name in ["evil_reduce_os_system.pth", "evil_builtins_eval.pth", "evil_inst.pth", "evil_obj.pth",
                     "evil_legacy_reduce.pth"] {
            let file = try TorchFile(path: Self.fixture(name))
            XCTAssertTrue(file.globalsNamed.contains("os.system") || file.globalsNamed.contains("builtins.eval"), name)
            var values = [file.root]
            if let d = file.root.dict { values = d.entries.map(\.value) }
            XCTAssertTrue(values.contains { if case .object = $0 { return true } else { return false } }, name)
        }
        XCTAssertThrowsError(try TorchFile(path: Self.fixture("evil_persistent_id.pth"))) { error in
            XCTAssertTrue("\(error)".contains("persistent id"), "\(error)")
        }
    }

    func testBrokenArchivesNameTheEntry() throws {
        let cases = [("bad_short_storage.pth", "'archive/data/0' holds 12 bytes"),
                     ("bad_unknown_storage.pth", "unknown storage type torch.QUInt8Storage"),
                     ("bad_dotdot.pth", "zip entry 'archive/../data/0'")]
        for (name, message) in cases {
            XCTAssertThrowsError(try TorchFile(path: Self.fixture(name))) { error in
                XCTAssertTrue("\(error)".contains(message), "\(name): \(error)")
            }
        }
    }

    func testTruncatedFilesAreErrors() throws {
        for name in ["authors_w4.pth.tar", "pretrain_w4_12666_legacy.pth.tar", "dtypes_views_legacy.pth"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixture(name))))
            for cut in [bytes.count / 3, bytes.count - 100] {
                XCTAssertThrowsError(try {
                    let file = try TorchFile(bytes: Array(bytes[..<cut]), file: name)
                    // A zip whose directory survived still fails on the storage it lost.
                    for (_, v) in file.root.dict?.entries ?? [] { if let t = v.tensor { _ = try file.tensorData(t, name: "t") } }
                }(), "\(name) cut at \(cut)") { error in
                    XCTAssertTrue("\(error)".contains(name), "\(error)")
                }
            }
        }
        // The legacy stream names the storage whose bytes are missing.
        let legacy = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixture("pretrain_w4_12666_legacy.pth.tar"))))
        XCTAssertThrowsError(try TorchFile(bytes: Array(legacy[..<(legacy.count - 100)]))) { error in
            XCTAssertTrue("\(error)".contains("storage '") && "\(error)".contains("truncated"), "\(error)")
        }
    }

    /// A 0-stride view of 2^40 elements over a 4-element storage is refused before it is copied.
    func testHugeRepeatingViewIsRefused() throws {
        let file = try TorchFile(path: Self.fixture("dtypes_views.pth"))
        var view = try XCTUnwrap(try entries(file)["expanded"])
        view.shape = [1 << 20, 1 << 20]
        view.strides = [0, 0]
        XCTAssertThrowsError(try file.tensorData(view, name: "huge")) { error in
            XCTAssertTrue("\(error)".contains("more than its storage"), "\(error)")
        }
    }

    func testMemoryLimitIsCheckedBeforeReadingStorages() throws {
        XCTAssertThrowsError(try TorchFile(path: Self.fixture("authors_w4.pth.tar"), limits: PyTorchReadLimits(maxBytes: 1 << 20))) { error in
            XCTAssertTrue("\(error)".contains("more than the memory limit of 1048576 bytes"), "\(error)")
        }
        XCTAssertNoThrow(try TorchFile(path: Self.fixture("authors_w4.pth.tar"), limits: PyTorchReadLimits(maxBytes: 4 << 20)))
    }

    /// A legacy file is read piece by piece (the pickle from its head, each storage when a tensor
    /// needs it): its declared sizes are checked against the file and `--max-memory` before any
    /// storage is read, a file cut short names the storage it lost, and the tensors are those of
    /// the same bytes read in memory.
    func testLegacyFileIsReadInPiecesAndCheckedFirst() throws {
        let name = "pretrain_w4_12666_legacy.pth.tar"
        // Its storages hold 0.8 MB (the 12666-class heads are views of one shared element).
        XCTAssertThrowsError(try TorchFile(path: Self.fixture(name), limits: PyTorchReadLimits(maxBytes: 1 << 19))) { error in
            XCTAssertTrue("\(error)".contains("more than the memory limit of 524288 bytes"), "\(error)")
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixture(name))))
        let fromFile = try TorchFile(path: Self.fixture(name)), inMemory = try TorchFile(bytes: bytes, file: name)
        XCTAssertEqual(fromFile.format, .legacy)
        let sd = try XCTUnwrap(fromFile.root.dict?["state_dict"]?.dict), sdMemory = try XCTUnwrap(inMemory.root.dict?["state_dict"]?.dict)
        XCTAssertEqual(sd.entries.count, sdMemory.entries.count)
        for ((key, value), (_, valueMemory)) in zip(sd.entries, sdMemory.entries) {
            let k = try XCTUnwrap(key.string)
            XCTAssertEqual(try fromFile.tensorData(try XCTUnwrap(value.tensor), name: k),
                           try inMemory.tensorData(try XCTUnwrap(valueMemory.tensor), name: k), k)
        }
        // The heads are zeros saved as stride-0 views of one shared storage, read as whole tensors.
        for key in ["module.fc_1.weight", "module.fc_2.bias"] {
            let head = try XCTUnwrap(sd[key]?.tensor, key)
            XCTAssertEqual(head.strides, [Int](repeating: 0, count: head.shape.count), key)
            let data = try fromFile.tensorData(head, name: key)
            XCTAssertEqual(data.dims, key.hasSuffix("weight") ? [12666, 32] : [12666], key)
            XCTAssertEqual(data.floats, [Float](repeating: 0, count: data.dims.reduce(1, *)), key)
        }
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let cut = folder.file("cut.pth.tar")
        try Data(bytes[..<(bytes.count - 100)]).write(to: URL(fileURLWithPath: cut))
        XCTAssertThrowsError(try TorchFile(path: cut)) { error in
            XCTAssertTrue("\(error)".contains("storage '") && "\(error)".contains("truncated"), "\(error)")
        }
    }

    /// A storage entry whose bytes were changed fails the zip's CRC-32 check, naming the entry.
    func testCorruptStorageFailsItsChecksum() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixture("authors_w4.pth.tar"))))
        let file = try TorchFile(bytes: bytes)
        let sd = try XCTUnwrap(file.root.dict?["state_dict"]?.dict)
        let conv1 = try XCTUnwrap(sd["module.conv1.weight"]?.tensor)
        let original = try file.tensorData(conv1, name: "conv1")
        // The first 8 bytes of conv1's storage, found in the archive (stored uncompressed).
        let needle = Array(original.bytes[0..<8])
        let at = try XCTUnwrap((0..<(bytes.count - 8)).first { Array(bytes[$0..<($0 + 8)]) == needle })
        bytes[at] ^= 0x40
        let corrupt = try TorchFile(bytes: bytes, file: "corrupt.pth.tar")
        XCTAssertThrowsError(try corrupt.tensorData(conv1, name: "conv1")) { error in
            XCTAssertTrue("\(error)".contains("authors_w4.pth/data/\(conv1.storage.key)") && "\(error)".contains("CRC-32"), "\(error)")
        }
    }

    // MARK: - The pickle machine's bounds

    func unpickle(_ bytes: [UInt8], limits: PyTorchReadLimits = PyTorchReadLimits()) throws -> PickleValue {
        var u = Unpickler(bytes: bytes, file: "test", limits: limits) { _ in .none }
        return try u.load()
    }

    func testNestingMemoAndCyclesAreBounded() throws {
        // 100000 nested 1-tuples: refused at the depth limit rather than recursing.
        let deep: [UInt8] = [0x80, 0x02, UInt8(ascii: "N")] + [UInt8](repeating: 0x85, count: 100_000) + [UInt8(ascii: ".")]
        XCTAssertThrowsError(try unpickle(deep)) { XCTAssertTrue("\($0)".contains("deeper than 256"), "\($0)") }
        let shallow: [UInt8] = [0x80, 0x02, UInt8(ascii: "N")] + [UInt8](repeating: 0x85, count: 200) + [UInt8(ascii: ".")]
        XCTAssertNoThrow(try unpickle(shallow))
        // Deep nesting through lists filled after they were wrapped is refused too.
        var lists: [UInt8] = [0x80, 0x02]
        for _ in 0..<300 { lists += [UInt8(ascii: "]")] }
        for _ in 0..<299 { lists += [UInt8(ascii: "a")] }
        lists += [UInt8(ascii: ".")]
        XCTAssertThrowsError(try unpickle(lists)) { XCTAssertTrue("\($0)".contains("deeper"), "\($0)") }
        // Memo entries beyond the limit.
        var memo: [UInt8] = [0x80, 0x02, UInt8(ascii: "N")]
        for i in 0..<11 { memo += [UInt8(ascii: "q"), UInt8(i)] }
        memo += [UInt8(ascii: ".")]
        XCTAssertThrowsError(try unpickle(memo, limits: PyTorchReadLimits(maxMemo: 10))) { XCTAssertTrue("\($0)".contains("memo"), "\($0)") }
        XCTAssertNoThrow(try unpickle(memo, limits: PyTorchReadLimits(maxMemo: 11)))
        // A list appended to itself (a cycle) is refused.
        let cycle: [UInt8] = [0x80, 0x02, UInt8(ascii: "]"), UInt8(ascii: "q"), 0, UInt8(ascii: "h"), 0, UInt8(ascii: "a"), UInt8(ascii: ".")]
        XCTAssertThrowsError(try unpickle(cycle)) { XCTAssertTrue("\($0)".contains("self-referencing"), "\($0)") }
        // A declared length past the end is refused before allocating.
        let long: [UInt8] = [0x80, 0x04, 0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, UInt8(ascii: ".")]
        XCTAssertThrowsError(try unpickle(long)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
    }

    // MARK: - Writer

    func testWrittenArchiveReadsBack() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let w = TensorData(name: "w", dims: [2, 3], floats: [1, 2, 3, 4, 5, -6.5])
        let n = TensorData(name: "n", dims: [], int64s: [7])
        let value = TorchSaveValue.dict([
            (.string("epoch"), .int(3)),
            (.string("state_dict"), .orderedDict([("module.w", .tensor(w)), ("module.n", .tensor(n))])),
            (.string("best_acc"), .float(0.25)),
            (.string("optimizer"), .dict([(.string("state"), .dict([(.int(0), .dict([(.string("momentum_buffer"), .tensor(w))]))])),
                                          (.string("param_groups"), .list([.dict([(.string("params"), .list([.int(0)])),
                                                                                    (.string("nesterov"), .bool(false)),
                                                                                    (.string("big"), .int(1 << 40)),
                                                                                    (.string("neg"), .int(-70000))])]))])),
        ])
        let path = folder.file("x.pth.tar")
        try TorchSave.write(value, to: path)
        let file = try TorchFile(path: path)
        let root = try XCTUnwrap(file.root.dict)
        XCTAssertEqual(root["epoch"]?.int, 3)
        XCTAssertEqual(root["best_acc"]?.double, 0.25)
        let sd = try XCTUnwrap(root["state_dict"]?.dict)
        XCTAssertEqual(sd.stringKeys, ["module.w", "module.n"])
        XCTAssertEqual(try file.tensorData(try XCTUnwrap(sd["module.w"]?.tensor), name: "w").floats, w.floats)
        XCTAssertEqual(try file.tensorData(try XCTUnwrap(sd["module.n"]?.tensor), name: "n").int64s, [7])
        let group = try XCTUnwrap(root["optimizer"]?.dict?["param_groups"].flatMap { if case .list(let l) = $0 { return l.items.first?.dict } else { return nil } })
        XCTAssertEqual(group["big"]?.int, 1 << 40)
        XCTAssertEqual(group["neg"]?.int, -70000)
        XCTAssertTrue(file.globalsNamed.allSatisfy { ["torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "torch.LongStorage",
                                                     "collections.OrderedDict"].contains($0) }, "\(file.globalsNamed)")
    }
}
