// Python's float formatting (str(), '{:.4f}', '{:6.3f}'), so log lines match the authors' byte for byte.

import Foundation

public enum PythonFormat {
    /// `str(x)` / `repr(x)` of a Python float: the shortest digits that round-trip, in fixed
    /// notation when 1e-4 <= |x| < 1e16 (always with a fractional part, `2.0`), otherwise
    /// `d.ddde-05` with at least two exponent digits.
    public static func str(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description holds the same shortest round-trip digits; only the layout differs.
        let (digits, pointPosition) = shortestDigits(abs(x))
        let sign = x < 0 ? "-" : ""
        // pointPosition: value = 0.d1d2d3... * 10^pointPosition (Python's `decpt`).
        if pointPosition > -4 && pointPosition <= 16 {
            if pointPosition <= 0 {
                return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
            }
            if pointPosition >= digits.count {
                return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
            }
            let i = digits.index(digits.startIndex, offsetBy: pointPosition)
            return sign + digits[..<i] + "." + digits[i...]
        }
        let exponent = pointPosition - 1
        let mantissa = digits.count == 1 ? digits : String(digits.first!) + "." + digits.dropFirst()
        let expDigits = String(abs(exponent))
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (expDigits.count < 2 ? "0" + expDigits : expDigits)
    }

    /// The significant digits of Swift's shortest representation and Python's `decpt`.
    static func shortestDigits(_ x: Double) -> (String, Int) {
        let text = x.description  // e.g. "71.87092590332031", "1.0000000000000003e-05", "1e-05"
        var mantissa = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...].replacingOccurrences(of: "+", with: "")) ?? 0
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = String(parts[0]), fractionPart = parts.count > 1 ? String(parts[1]) : ""
        var digits = integerPart + fractionPart
        var point = integerPart.count + exponent
        // Strip leading zeros (0.0001 -> "1", point moves left) and trailing zeros ("2.0").
        while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); point -= 1 }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (digits, point)
    }

    /// `'{:.Nf}'.format(x)`: correctly rounded, like C's printf (round-half-even on exact ties).
    public static func fixed(_ x: Double, decimals: Int, width: Int = 0) -> String {
        let text = String(format: "%.\(decimals)f", x)
        return text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
