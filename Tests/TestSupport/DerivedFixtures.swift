// Fixtures made at test time from committed ones by a rule the fixture script checks against the
// file PyTorch's tools write (tools/fixtures/make_fixtures.py), so that only one copy is committed.

import Foundation

extension Fixtures {
    /// Writes `fixtures/manet_w8.safetensors` with DataParallel's `module.` prefix on every tensor
    /// name to `path`: the bytes safetensors' `save_file` writes for the prefixed state_dict
    /// (gen_safetensors asserts that this rule reproduces them). Every tensor key of the JSON header
    /// gets the prefix, the header is padded again with spaces to a multiple of 8 bytes, and the data
    /// is unchanged (the prefix keeps the keys' order, so the tensors keep their offsets).
    public static func writeModulePrefixedSafetensors(to path: String) throws {
        let plain = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("manet_w8.safetensors"))))
        struct Malformed: Error, CustomStringConvertible { var description: String }
        guard plain.count >= 8 else { throw Malformed(description: "manet_w8.safetensors: shorter than 8 bytes") }
        let length = plain[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard length <= plain.count - 8, var header = String(bytes: plain[8..<(8 + length)], encoding: .utf8),
              let keys = (try JSONSerialization.jsonObject(with: Data(header.utf8))) as? [String: Any] else {
            throw Malformed(description: "manet_w8.safetensors: no JSON header")
        }
        while header.hasSuffix(" ") { header.removeLast() }
        for name in keys.keys where name != "__metadata__" {
            let key = "\"\(name)\":{"
            guard let range = header.range(of: key) else { throw Malformed(description: "manet_w8.safetensors: key \(name) not found") }
            header.replaceSubrange(range, with: "\"module.\(name)\":{")
        }
        var bytes = [UInt8](header.utf8)
        bytes += [UInt8](repeating: UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
        let prefix = (0..<8).map { UInt8(truncatingIfNeeded: bytes.count >> (8 * $0)) }
        try Data(prefix + bytes + plain[(8 + length)...]).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
