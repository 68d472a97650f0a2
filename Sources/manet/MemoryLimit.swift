// `--max-memory BYTES` for the commands that load models: parsing of sizes such as 512M or 2G.

import ArgumentParser

/// A byte count given on the command line: a plain number of bytes, or a number with a binary
/// suffix K, M, G or T (powers of 1024; `KiB`, `MB`, ... are read the same way).
struct MemoryLimit: ExpressibleByArgument {
    let bytes: Int

    static let help: ArgumentHelp = """
        Refuse a model whose file, or whose initializers and fixed-shape inputs, need more than \
        this many bytes, before reading them (suffixes K, M, G, T: powers of 1024; default: no limit).
        """

    init?(argument: String) {
        guard let bytes = MemoryLimit.parse(argument) else { return nil }
        self.bytes = bytes
    }

    static func parse(_ text: String) -> Int? {
        var digits = text.uppercased()
        for unit in ["IB", "B"] where digits.hasSuffix(unit) && digits.count > unit.count {
            digits = String(digits.dropLast(unit.count))
            break
        }
        var scale = 1
        if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
            scale = 1 << (10 * power)
            digits.removeLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int(digits), n > 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }
}
