// The values a pickle holds once read as data: numbers, strings, containers, tensors, and opaque objects that are never called.

/// A Python list or dict is mutable in a pickle (APPENDS and SETITEMS fill it after it is memoized),
/// so both are reference types here, as in Python.
public final class PickleList {
    public internal(set) var items: [PickleValue]
    /// Set once the list is inside another value: later mutation is refused (no cycles).
    var frozen = false
    var depth = 1
    public init(_ items: [PickleValue] = []) { self.items = items }
}

public final class PickleDict {
    /// Entries in insertion order (a state_dict's order is the model's parameter order).
    public internal(set) var entries: [(key: PickleValue, value: PickleValue)]
    var frozen = false
    var depth = 1
    /// True when the dict was built by `collections.OrderedDict`.
    public var ordered: Bool
    public init(_ entries: [(key: PickleValue, value: PickleValue)] = [], ordered: Bool = false) {
        self.entries = entries
        self.ordered = ordered
    }

    /// The value under a string key (the last one, as Python's dict keeps the last assignment).
    public subscript(key: String) -> PickleValue? {
        entries.last { if case .string(key) = $0.key { return true } else { return false } }?.value
    }

    /// The keys that are strings, in order.
    public var stringKeys: [String] {
        entries.compactMap { if case .string(let s) = $0.key { return s } else { return nil } }
    }
}

/// An object the reader does not know how to build: the global that would have been called
/// (a class, a reconstructor, or `os.system`), the arguments it would have received, and the
/// state BUILD would have set. Nothing of it is ever executed.
public final class PickleObject {
    public let callable: PickleValue
    public let arguments: PickleValue
    public internal(set) var state: PickleValue?
    /// Items APPENDS or SETITEMS added to it (a subclass of list or dict).
    public internal(set) var items: [PickleValue] = []
    var frozen = false
    var depth = 1
    public init(callable: PickleValue, arguments: PickleValue) {
        self.callable = callable
        self.arguments = arguments
    }
}

/// Where a torch storage lives in the file and what it holds.
public struct TorchStorage: Equatable, Sendable {
    /// The record name in the archive (`data/<key>`) or the key in the legacy stream.
    public var key: String
    public var dtype: TorchDType
    /// The device tag as written (`cpu`, `cuda:0`): read as a location only.
    public var location: String
    /// Element count as the persistent id declares it.
    public var elementCount: Int
}

/// A tensor as `_rebuild_tensor_v2` would make it: a view into a storage.
public struct TorchTensor: Equatable, Sendable {
    public var storage: TorchStorage
    public var offset: Int
    public var shape: [Int]
    public var strides: [Int]
    public var requiresGrad: Bool

    public init(storage: TorchStorage, offset: Int, shape: [Int], strides: [Int], requiresGrad: Bool = false) {
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.strides = strides
        self.requiresGrad = requiresGrad
    }

    /// Row-major strides of `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s = s &* max(shape[i], 1)
        }
        return strides
    }
}

/// torch's storage element types, by the legacy storage class names torch.save writes.
public enum TorchDType: String, CaseIterable, Sendable {
    case float32 = "FloatStorage", float64 = "DoubleStorage", float16 = "HalfStorage",
         bfloat16 = "BFloat16Storage", int64 = "LongStorage", int32 = "IntStorage",
         int16 = "ShortStorage", int8 = "CharStorage", uint8 = "ByteStorage", bool = "BoolStorage"

    public var elementSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }
}

public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer too large for `Int`, as its little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A set or frozenset, as its items.
    case set([PickleValue])
    /// A global named by GLOBAL / STACK_GLOBAL / INST that the reader does not build.
    case global(module: String, name: String)
    case object(PickleObject)
    case storage(TorchStorage)
    case tensor(TorchTensor)

    public var dict: PickleDict? { if case .dict(let d) = self { return d } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    public var tensor: TorchTensor? { if case .tensor(let t) = self { return t } else { return nil } }

    /// A short description for error messages (never recursing deeper than one level).
    public var summary: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt: return "a big integer"
        case .float(let d): return String(d)
        case .string(let s): return "'" + (s.count > 40 ? String(s.prefix(40)) + "..." : s) + "'"
        case .bytes(let b): return "\(b.count) bytes"
        case .tuple(let t): return "a tuple of \(t.count)"
        case .list(let l): return "a list of \(l.items.count)"
        case .dict(let d): return "a dict of \(d.entries.count)"
        case .set(let s): return "a set of \(s.count)"
        case let .global(module, name): return "\(module).\(name)"
        case .object(let o): return "an object of \(o.callable.summary)"
        case .storage(let s): return "a \(s.dtype.rawValue) of \(s.elementCount)"
        case .tensor(let t): return "a tensor \(t.shape)"
        }
    }
}
