// A pickle reader that executes nothing: protocol 0-5 opcodes interpreted as data, torch's rebuild functions known, every other global opaque.

/// Reads one pickle (up to its STOP) into `PickleValue`s.
///
/// Python's unpickler imports every global the stream names and calls it; this one never does.
/// A global it knows (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`,
/// `collections.OrderedDict`, torch's storage classes) is interpreted by its meaning; any other
/// (a script's own class, numpy's reconstructor, `os.system`) stays a `.global` value, and a
/// REDUCE, NEWOBJ, INST or OBJ of it an opaque `PickleObject` that holds its arguments.
///
/// Bounds: containers nest at most `limits.maxDepth` deep, the memo holds at most
/// `limits.maxMemo` entries, every length is checked against the bytes left before anything is
/// allocated. A list, dict or object placed inside another value is frozen: a later APPEND,
/// SETITEM or BUILD on it is refused, so no reference cycle (and no unbounded depth) can form.
public struct Unpickler {
    /// Turns a persistent id into a value (torch: a storage reference).
    public typealias PersistentLoad = (PickleValue) throws -> PickleValue

    let bytes: [UInt8]
    public private(set) var position: Int
    let end: Int
    let file: String
    let limits: PyTorchReadLimits
    let persistentLoad: PersistentLoad
    /// Every global the stream named, `module.name`, in first-seen order.
    public private(set) var globalsNamed: [String] = []
    private var globalsSeen = Set<String>()

    private struct Slot {
        var value: PickleValue
        /// Depth of values that are not classes (tuples, scalars); classes carry their own.
        var depth: Int
    }

    private var stack: [Slot] = []
    private var marks: [Int] = []
    private var memo: [Int: Slot] = [:]

    public init(bytes: [UInt8], start: Int = 0, end: Int? = nil, file: String,
                limits: PyTorchReadLimits = PyTorchReadLimits(), persistentLoad: @escaping PersistentLoad) {
        self.bytes = bytes
        self.position = start
        self.end = min(end ?? bytes.count, bytes.count)
        self.file = file
        self.limits = limits
        self.persistentLoad = persistentLoad
    }

    private func fail(_ reason: String) -> PyTorchFormatError {
        PyTorchFormatError(file: file, reason: "pickle: " + reason)
    }

    // MARK: - Reading bytes

    private mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= end - position else {
            throw fail("\(what) needs \(n) bytes at offset \(position), \(end - position) left (truncated)")
        }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    private mutating func byte(_ what: String) throws -> UInt8 { try take(1, what).first! }

    private mutating func uint(_ n: Int, _ what: String) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n, what).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    /// A length field, refused when it exceeds the bytes left.
    private mutating func length(_ n: Int, _ what: String) throws -> Int {
        let v = try uint(n, what)
        guard v <= UInt64(end - position) else {
            throw fail("\(what) declares \(v) bytes at offset \(position), \(end - position) left (truncated)")
        }
        return Int(v)
    }

    private mutating func line(_ what: String) throws -> String {
        guard let nl = bytes[position..<end].firstIndex(of: UInt8(ascii: "\n")) else {
            throw fail("\(what): no end of line before the end of the data")
        }
        defer { position = nl + 1 }
        return String(decoding: bytes[position..<nl], as: UTF8.self)
    }

    private func utf8(_ s: ArraySlice<UInt8>, _ what: String) throws -> String {
        guard let string = String(validating: s, as: UTF8.self) else { throw fail("\(what) is not valid UTF-8") }
        return string
    }

    // MARK: - Stack, memo, depth

    private func depth(_ slot: Slot) -> Int {
        switch slot.value {
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        case .object(let o): return o.depth
        default: return slot.depth
        }
    }

    /// Marks `value` as held by another value: it may no longer change.
    private func freeze(_ value: PickleValue) {
        switch value {
        case .list(let l): l.frozen = true
        case .dict(let d): d.frozen = true
        case .object(let o): o.frozen = true
        default: break
        }
    }

    /// A new value holding `children`: its depth is checked and the children frozen.
    private func contain(_ children: [Slot]) throws -> Int {
        var d = 0
        for c in children {
            d = max(d, depth(c))
            freeze(c.value)
        }
        guard d + 1 <= limits.maxDepth else { throw fail("values nest deeper than \(limits.maxDepth) levels") }
        return d + 1
    }

    private mutating func push(_ value: PickleValue, depth: Int = 0) { stack.append(Slot(value: value, depth: depth)) }

    private mutating func pop(_ op: String) throws -> Slot {
        guard let top = stack.popLast() else { throw fail("\(op) on an empty stack") }
        if let mark = marks.last, stack.count < mark { throw fail("\(op) reaches below the MARK") }
        return top
    }

    private mutating func popMark(_ op: String) throws -> [Slot] {
        guard let mark = marks.popLast() else { throw fail("\(op) without a MARK") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func put(_ index: Int) throws {
        guard let top = stack.last else { throw fail("PUT on an empty stack") }
        if memo[index] == nil, memo.count >= limits.maxMemo {
            throw fail("more than \(limits.maxMemo) memo entries")
        }
        memo[index] = top
    }

    private mutating func get(_ index: Int) throws {
        guard let slot = memo[index] else { throw fail("GET of memo entry \(index), which was never PUT") }
        stack.append(slot)
    }

    private mutating func noteGlobal(_ module: String, _ name: String) {
        let full = module + "." + name
        if globalsSeen.insert(full).inserted { globalsNamed.append(full) }
    }

    // MARK: - Mutations of lists, dicts and objects

    private func identity(_ v: PickleValue) -> ObjectIdentifier? {
        switch v {
        case .list(let l): return ObjectIdentifier(l)
        case .dict(let d): return ObjectIdentifier(d)
        case .object(let o): return ObjectIdentifier(o)
        default: return nil
        }
    }

    /// Refuses a change of a value already held by another, or one that would put a value into itself.
    private func mutable(_ target: Slot, _ op: String, adding items: [Slot] = []) throws {
        if let id = identity(target.value), items.contains(where: { identity($0.value) == id }) {
            throw fail("\(op) puts a value into itself (a self-referencing structure)")
        }
        let frozen: Bool
        switch target.value {
        case .list(let l): frozen = l.frozen
        case .dict(let d): frozen = d.frozen
        case .object(let o): frozen = o.frozen
        default: return
        }
        if frozen { throw fail("\(op) changes a value already held by another (a self-referencing structure)") }
    }

    private func append(_ items: [Slot], to target: Slot, _ op: String) throws {
        try mutable(target, op, adding: items)
        let d = try contain(items)
        switch target.value {
        case .list(let l):
            l.items.append(contentsOf: items.map(\.value)); l.depth = max(l.depth, d)
        case .object(let o):
            o.items.append(contentsOf: items.map(\.value)); o.depth = max(o.depth, d)
        default:
            throw fail("\(op) on \(target.value.summary), which is not a list")
        }
    }

    private func setItems(_ items: [Slot], in target: Slot, _ op: String) throws {
        guard items.count % 2 == 0 else { throw fail("\(op) with an odd number of items") }
        try mutable(target, op, adding: items)
        let d = try contain(items)
        switch target.value {
        case .dict(let dict):
            for i in stride(from: 0, to: items.count, by: 2) {
                let key = items[i].value
                if case .string(let s) = key, let existing = dict.entries.firstIndex(where: { $0.key.string == s }) {
                    dict.entries[existing].value = items[i + 1].value
                } else {
                    dict.entries.append((key, items[i + 1].value))
                }
            }
            dict.depth = max(dict.depth, d)
        case .object(let o):
            o.items.append(contentsOf: items.map(\.value)); o.depth = max(o.depth, d)
        default:
            throw fail("\(op) on \(target.value.summary), which is not a dict")
        }
    }

    // MARK: - Known globals

    /// The result of calling `callable(*args)` when the reader knows what it means, else an
    /// opaque object recording the call.
    private func call(_ callable: Slot, _ args: Slot) throws -> Slot {
        let d = try contain([callable, args])
        guard case let .global(module, name) = callable.value, case .tuple(let a) = args.value else {
            return opaque(callable.value, args.value, depth: d)
        }
        switch (module, name) {
        case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"):
            guard a.count >= 4, case .storage(let storage) = a[0], let offset = a[1].int,
                  let shape = intTuple(a[2]), let strides = intTuple(a[3]) else {
                throw fail("\(module).\(name) with arguments that are not (storage, offset, size, stride, ...)")
            }
            let requiresGrad = a.count > 4 ? (a[4].int ?? 0) != 0 : false
            return Slot(value: .tensor(TorchTensor(storage: storage, offset: offset, shape: shape,
                                                   strides: strides, requiresGrad: requiresGrad)), depth: 1)
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard a.count >= 2, case .tensor(var t) = a[0] else {
                throw fail("\(module).\(name) of \(a.first?.summary ?? "nothing"), not a tensor")
            }
            t.requiresGrad = (a[1].int ?? 0) != 0
            return Slot(value: .tensor(t), depth: 1)
        case ("torch._tensor", "_rebuild_from_type_v2"):
            // (function, type, args, state): a tensor subclass rebuilt by `function(*args)`.
            guard a.count >= 3 else { return opaque(callable.value, args.value, depth: d) }
            return try call(Slot(value: a[0], depth: 0), Slot(value: a[2], depth: d - 1))
        case ("collections", "OrderedDict"), ("builtins", "dict"), ("__builtin__", "dict"):
            let dict = PickleDict(ordered: module == "collections")
            if let pairs = a.first {
                let items: [PickleValue]
                switch pairs {
                case .list(let l): items = l.items
                case .tuple(let t): items = t
                default: return opaque(callable.value, args.value, depth: d)
                }
                for item in items {
                    guard case .tuple(let kv) = item, kv.count == 2 else {
                        if case .list(let l) = item, l.items.count == 2 { dict.entries.append((l.items[0], l.items[1])); continue }
                        return opaque(callable.value, args.value, depth: d)
                    }
                    dict.entries.append((kv[0], kv[1]))
                }
                dict.depth = d
            }
            return Slot(value: .dict(dict), depth: 0)
        default:
            return opaque(callable.value, args.value, depth: d)
        }
    }

    private func opaque(_ callable: PickleValue, _ args: PickleValue, depth: Int) -> Slot {
        let o = PickleObject(callable: callable, arguments: args)
        o.depth = depth
        return Slot(value: .object(o), depth: 0)
    }

    private func intTuple(_ v: PickleValue) -> [Int]? {
        guard case .tuple(let items) = v else { return nil }
        var out: [Int] = []
        for item in items {
            guard case .int(let i) = item else { return nil }
            out.append(i)
        }
        return out
    }

    // MARK: - The machine

    /// Runs to STOP and returns the value on top; `position` is then just past the STOP.
    public mutating func load() throws -> PickleValue {
        while true {
            let opOffset = position
            let op = try byte("an opcode")
            switch op {
            case 0x80:  // PROTO
                let proto = try byte("PROTO")
                guard proto <= 5 else { throw fail("protocol \(proto) is newer than 5") }
            case 0x95:  // FRAME: a length hint only
                _ = try uint(8, "FRAME")
            case UInt8(ascii: "."):  // STOP
                guard let top = stack.last else { throw fail("STOP on an empty stack") }
                guard marks.isEmpty else { throw fail("STOP with an open MARK") }
                return top.value
            case UInt8(ascii: "("): marks.append(stack.count)  // MARK
                guard marks.count <= limits.maxDepth else { throw fail("MARKs nest deeper than \(limits.maxDepth)") }
            case UInt8(ascii: "0"): _ = try pop("POP")
            case UInt8(ascii: "1"): _ = try popMark("POP_MARK")
            case UInt8(ascii: "2"):  // DUP
                guard let top = stack.last else { throw fail("DUP on an empty stack") }
                stack.append(top)

            // Scalars
            case UInt8(ascii: "N"): push(.none)
            case 0x88: push(.bool(true))
            case 0x89: push(.bool(false))
            case UInt8(ascii: "J"): push(.int(Int(Int32(truncatingIfNeeded: try uint(4, "BININT")))))
            case UInt8(ascii: "K"): push(.int(Int(try uint(1, "BININT1"))))
            case UInt8(ascii: "M"): push(.int(Int(try uint(2, "BININT2"))))
            case 0x8a: push(long(try take(try length(1, "LONG1"), "LONG1")))
            case 0x8b: push(long(try take(try length(4, "LONG4"), "LONG4")))
            case UInt8(ascii: "I"):  // INT (text); "01"/"00" are True/False
                let text = try line("INT")
                if text == "01" { push(.bool(true)) } else if text == "00" { push(.bool(false)) }
                else if let i = Int(text) { push(.int(i)) } else { throw fail("INT '\(text.prefix(40))' is not an integer") }
            case UInt8(ascii: "L"):  // LONG (text)
                var text = try line("LONG")
                if text.hasSuffix("L") { text.removeLast() }
                guard let i = Int(text) else { throw fail("LONG '\(text.prefix(40))' is not an integer that fits 64 bits") }
                push(.int(i))
            case UInt8(ascii: "G"): push(.float(Double(bitPattern: UInt64(bigEndian: try uint(8, "BINFLOAT")))))
            case UInt8(ascii: "F"):
                let text = try line("FLOAT")
                guard let d = Double(text) else { throw fail("FLOAT '\(text.prefix(40))' is not a number") }
                push(.float(d))

            // Strings and bytes
            case UInt8(ascii: "X"): push(.string(try utf8(try take(try length(4, "BINUNICODE"), "BINUNICODE"), "BINUNICODE")))
            case 0x8c: push(.string(try utf8(try take(try length(1, "SHORT_BINUNICODE"), "SHORT_BINUNICODE"), "SHORT_BINUNICODE")))
            case 0x8d: push(.string(try utf8(try take(try length(8, "BINUNICODE8"), "BINUNICODE8"), "BINUNICODE8")))
            case UInt8(ascii: "V"): push(.string(try line("UNICODE")))
            case UInt8(ascii: "S"):  // STRING: a quoted repr, kept as its text without the quotes
                var text = try line("STRING")
                if text.count >= 2, let q = text.first, q == "'" || q == "\"", text.last == q {
                    text = String(text.dropFirst().dropLast())
                }
                push(.string(text))
            case UInt8(ascii: "T"): push(.string(String(decoding: try take(try length(4, "BINSTRING"), "BINSTRING"), as: UTF8.self)))
            case UInt8(ascii: "U"): push(.string(String(decoding: try take(try length(1, "SHORT_BINSTRING"), "SHORT_BINSTRING"), as: UTF8.self)))
            case UInt8(ascii: "B"): push(.bytes(Array(try take(try length(4, "BINBYTES"), "BINBYTES"))))
            case UInt8(ascii: "C"): push(.bytes(Array(try take(try length(1, "SHORT_BINBYTES"), "SHORT_BINBYTES"))))
            case 0x8e: push(.bytes(Array(try take(try length(8, "BINBYTES8"), "BINBYTES8"))))
            case 0x96: push(.bytes(Array(try take(try length(8, "BYTEARRAY8"), "BYTEARRAY8"))))
            case 0x97: throw fail("NEXT_BUFFER: out-of-band buffers are not part of a file")
            case 0x98: _ = try pop("READONLY_BUFFER"); throw fail("READONLY_BUFFER: out-of-band buffers are not part of a file")

            // Containers
            case UInt8(ascii: ")"): push(.tuple([]), depth: 1)
            case 0x85, 0x86, 0x87:  // TUPLE1-3
                let n = Int(op - 0x84)
                var items: [Slot] = []
                for _ in 0..<n { items.insert(try pop("TUPLE\(n)"), at: 0) }
                push(.tuple(items.map(\.value)), depth: try contain(items))
            case UInt8(ascii: "t"):
                let items = try popMark("TUPLE")
                push(.tuple(items.map(\.value)), depth: try contain(items))
            case UInt8(ascii: "]"): push(.list(PickleList()))
            case UInt8(ascii: "l"):
                let items = try popMark("LIST")
                let l = PickleList(items.map(\.value))
                l.depth = try contain(items)
                push(.list(l))
            case UInt8(ascii: "}"): push(.dict(PickleDict()))
            case UInt8(ascii: "d"):
                let items = try popMark("DICT")
                let dict = Slot(value: .dict(PickleDict()), depth: 0)
                try setItems(items, in: dict, "DICT")
                stack.append(dict)
            case 0x8f: push(.set([]), depth: 1)
            case 0x91:  // FROZENSET
                let items = try popMark("FROZENSET")
                push(.set(items.map(\.value)), depth: try contain(items))
            case 0x90:  // ADDITEMS
                let items = try popMark("ADDITEMS")
                let target = try pop("ADDITEMS")
                guard case .set(let existing) = target.value else { throw fail("ADDITEMS on \(target.value.summary), not a set") }
                let all = [Slot(value: .set(existing), depth: target.depth)] + items
                push(.set(existing + items.map(\.value)), depth: try contain(all))
            case UInt8(ascii: "a"):  // APPEND
                let item = try pop("APPEND")
                guard let target = stack.last else { throw fail("APPEND with no list") }
                try append([item], to: target, "APPEND")
            case UInt8(ascii: "e"):  // APPENDS
                let items = try popMark("APPENDS")
                guard let target = stack.last else { throw fail("APPENDS with no list") }
                try append(items, to: target, "APPENDS")
            case UInt8(ascii: "s"):  // SETITEM
                let value = try pop("SETITEM")
                let key = try pop("SETITEM")
                guard let target = stack.last else { throw fail("SETITEM with no dict") }
                try setItems([key, value], in: target, "SETITEM")
            case UInt8(ascii: "u"):  // SETITEMS
                let items = try popMark("SETITEMS")
                guard let target = stack.last else { throw fail("SETITEMS with no dict") }
                try setItems(items, in: target, "SETITEMS")

            // Memo
            case UInt8(ascii: "p"):
                let text = try line("PUT")
                guard let i = Int(text), i >= 0 else { throw fail("PUT index '\(text.prefix(40))'") }
                try put(i)
            case UInt8(ascii: "q"): try put(Int(try uint(1, "BINPUT")))
            case UInt8(ascii: "r"): try put(Int(try uint(4, "LONG_BINPUT")))
            case 0x94: try put(memo.count)  // MEMOIZE
            case UInt8(ascii: "g"):
                let text = try line("GET")
                guard let i = Int(text) else { throw fail("GET index '\(text.prefix(40))'") }
                try get(i)
            case UInt8(ascii: "h"): try get(Int(try uint(1, "BINGET")))
            case UInt8(ascii: "j"): try get(Int(try uint(4, "LONG_BINGET")))

            // Globals and objects: named, never imported or called
            case UInt8(ascii: "c"):  // GLOBAL
                let module = try line("GLOBAL module")
                let name = try line("GLOBAL name")
                noteGlobal(module, name)
                push(.global(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop("STACK_GLOBAL")
                let module = try pop("STACK_GLOBAL")
                guard case .string(let n) = name.value, case .string(let m) = module.value else {
                    throw fail("STACK_GLOBAL of \(module.value.summary), \(name.value.summary): not two strings")
                }
                noteGlobal(m, n)
                push(.global(module: m, name: n))
            case 0x82, 0x83, 0x84: throw fail("EXT\(op == 0x82 ? 1 : op == 0x83 ? 2 : 4): the extension registry is not supported")
            case UInt8(ascii: "R"):  // REDUCE
                let args = try pop("REDUCE")
                let callable = try pop("REDUCE")
                stack.append(try call(callable, args))
            case 0x81:  // NEWOBJ: cls.__new__(cls, *args)
                let args = try pop("NEWOBJ")
                let cls = try pop("NEWOBJ")
                stack.append(opaque(cls.value, args.value, depth: try contain([cls, args])))
            case 0x92:  // NEWOBJ_EX
                let kwargs = try pop("NEWOBJ_EX")
                let args = try pop("NEWOBJ_EX")
                let cls = try pop("NEWOBJ_EX")
                let d = try contain([cls, args, kwargs])
                stack.append(opaque(cls.value, .tuple([args.value, kwargs.value]), depth: d))
            case UInt8(ascii: "i"):  // INST module name, arguments since MARK
                let module = try line("INST module")
                let name = try line("INST name")
                noteGlobal(module, name)
                let items = try popMark("INST")
                stack.append(opaque(.global(module: module, name: name), .tuple(items.map(\.value)), depth: try contain(items)))
            case UInt8(ascii: "o"):  // OBJ: class and arguments since MARK
                let items = try popMark("OBJ")
                guard let cls = items.first else { throw fail("OBJ with nothing after its MARK") }
                stack.append(opaque(cls.value, .tuple(items.dropFirst().map(\.value)), depth: try contain(items)))
            case UInt8(ascii: "b"):  // BUILD
                let state = try pop("BUILD")
                guard let target = stack.last else { throw fail("BUILD with no object") }
                switch target.value {
                case .object(let o):
                    try mutable(target, "BUILD", adding: [state])
                    o.depth = max(o.depth, try contain([state]))
                    o.state = state.value
                case .dict(let d):
                    // OrderedDict's instance attributes (a state_dict's `_metadata`): kept nowhere.
                    try mutable(target, "BUILD", adding: [state])
                    d.depth = max(d.depth, try contain([state]))
                default:
                    // A tensor's Python attributes: not part of its data.
                    _ = try contain([state])
                }
            case UInt8(ascii: "Q"):  // BINPERSID
                let pid = try pop("BINPERSID")
                _ = try contain([pid])
                push(try persistentLoad(pid.value), depth: 1)
            case UInt8(ascii: "P"):  // PERSID (text)
                push(try persistentLoad(.string(try line("PERSID"))), depth: 1)
            default:
                throw fail(String(format: "unknown opcode 0x%02x at offset %d", op, opOffset))
            }
        }
    }

    /// A little-endian two's-complement integer of any length (LONG1 / LONG4).
    private func long(_ data: ArraySlice<UInt8>) -> PickleValue {
        let b = Array(data)
        if b.isEmpty { return .int(0) }
        guard b.count <= 8 else { return .bigInt(b) }
        var v: UInt64 = 0
        for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
        if b.count < 8, b.last! & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(b.count)) }
        return .int(Int(Int64(bitPattern: v)))
    }
}
