// The one tolerance check every test target uses, reporting where and by how much it failed.

import XCTest

/// Asserts `|actual[i] - expected[i]| <= atol + rtol * |expected[i]|` for every `i` (NaN
/// matches NaN, infinities must match exactly). On failure reports the element with the
/// largest excess over its tolerance: index, both values, the max absolute difference, and
/// how many elements are out of tolerance. Approximate equality is deliberately not `==`:
/// it is not transitive, so it belongs in a test helper, not in `Equatable`.
public func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                        _ message: @autoclosure () -> String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("assertClose: \(actual.count) values, expected \(expected.count) \(message())", file: file, line: line)
        return
    }
    var failures = 0
    var worst = -1
    var worstExcess: Float = 0
    var maxDiff: Float = 0
    var maxDiffIndex = -1
    for i in 0..<actual.count {
        let a = actual[i], e = expected[i]
        if a.isNaN && e.isNaN { continue }
        if a.isInfinite || e.isInfinite {
            if a == e { continue }
            failures += 1
            if worst < 0 || worstExcess < .infinity { worst = i; worstExcess = .infinity }
            continue
        }
        let diff = abs(a - e)
        if !(diff <= maxDiff) || maxDiffIndex < 0 { maxDiff = diff; maxDiffIndex = i }
        let excess = diff - (atol + rtol * abs(e))
        if !(excess <= 0) {
            failures += 1
            if worst < 0 || !(excess <= worstExcess) { worst = i; worstExcess = excess }
        }
    }
    if failures > 0 {
        let i = worst
        XCTFail("assertClose: \(failures) of \(actual.count) values out of tolerance (rtol \(rtol), atol \(atol)); "
                + "worst at index \(i): actual \(actual[i]), expected \(expected[i]); "
                + "max |diff| \(maxDiff) at index \(maxDiffIndex) \(message())", file: file, line: line)
    }
}
