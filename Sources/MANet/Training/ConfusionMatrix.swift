// Per-class results of an evaluation: counts of (true class, predicted class), per-class
// accuracy, and the matrix as text and as an SVG picture.

import Foundation

public struct ConfusionMatrix: Equatable, Sendable {
    public let classNames: [String]
    /// `counts[truth][predicted]`.
    public private(set) var counts: [[Int]]

    public init(classNames: [String]) {
        self.classNames = classNames
        counts = Array(repeating: Array(repeating: 0, count: classNames.count), count: classNames.count)
    }

    /// Counts each (label, prediction) pair; pairs outside the class range are ignored.
    public mutating func add(labels: [Int], predicted: [Int]) {
        for (t, p) in zip(labels, predicted) where counts.indices.contains(t) && counts.indices.contains(p) {
            counts[t][p] += 1
        }
    }

    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
    public func images(of c: Int) -> Int { counts[c].reduce(0, +) }
    public func correct(of c: Int) -> Int { counts[c][c] }
    /// Percent of class `c`'s images classified as `c` (nil for a class without images).
    public func accuracy(of c: Int) -> Double? {
        images(of: c) > 0 ? 100 * Double(correct(of: c)) / Double(images(of: c)) : nil
    }

    /// Per-class accuracy, then the matrix (rows: true class, columns: predicted).
    public func text() -> String {
        let nameWidth = max(5, classNames.map(\.count).max() ?? 0)
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        var out = "per class:\n"
        out += "  " + pad("class", nameWidth, left: true) + "  images  correct  accuracy\n"
        for c in classNames.indices {
            let accuracy = accuracy(of: c).map { String(format: "%.3f%%", $0) } ?? "-"
            out += "  " + pad(classNames[c], nameWidth, left: true) + "  " + pad(String(images(of: c)), 6) + "  "
                + pad(String(correct(of: c)), 7) + "  " + pad(accuracy, 8) + "\n"
        }
        let cell = max(5, classNames.map(\.count).max() ?? 0, String(counts.flatMap { $0 }.max() ?? 0).count)
        out += "confusion matrix (rows: true class, columns: predicted):\n"
        out += "  " + pad("", nameWidth) + classNames.map { " " + pad($0, cell) }.joined() + "\n"
        for t in classNames.indices {
            out += "  " + pad(classNames[t], nameWidth, left: true) + counts[t].map { " " + pad(String($0), cell) }.joined() + "\n"
        }
        return out
    }

    /// The matrix as a grid of cells shaded by the share of the row (the true class), with the
    /// counts written in, the per-class accuracy at the right.
    public func svg(title: String) -> String {
        let n = classNames.count
        let cell = 56.0, left = 120.0, top = 90.0
        var svg = SVGWriter(width: left + cell * Double(n) + 110, height: top + cell * Double(n) + 40)
        svg.rect(x: 0, y: 0, width: svg.width, height: svg.height, fill: "#ffffff")
        svg.text(title, x: 12, y: 22, size: 14, bold: true)
        svg.text("predicted class", x: left + cell * Double(n) / 2, y: 44, size: 12, anchor: .middle)
        svg.text("true class", x: 18, y: top + cell * Double(n) / 2, size: 12, anchor: .middle, rotate: -90)
        svg.text("accuracy", x: left + cell * Double(n) + 55, y: top - 10, size: 11, anchor: .middle)
        for c in 0..<n {
            svg.text(classNames[c], x: left + cell * (Double(c) + 0.5), y: top - 10, size: 11, anchor: .middle)
            svg.text(classNames[c], x: left - 8, y: top + cell * (Double(c) + 0.5) + 4, size: 11, anchor: .end)
        }
        for t in 0..<n {
            let rowTotal = max(1, images(of: t))
            for p in 0..<n {
                let share = Double(counts[t][p]) / Double(rowTotal)
                // White to blue by share of the row; the diagonal in the same scale.
                let r = Int(255 - 200 * share), g = Int(255 - 150 * share), b = 255
                svg.rect(x: left + cell * Double(p), y: top + cell * Double(t), width: cell, height: cell,
                         fill: String(format: "#%02x%02x%02x", r, g, b), stroke: "#cccccc")
                svg.text(String(counts[t][p]), x: left + cell * (Double(p) + 0.5), y: top + cell * (Double(t) + 0.5) + 4,
                         size: 12, anchor: .middle, bold: t == p)
            }
            let accuracy = accuracy(of: t).map { String(format: "%.1f%%", $0) } ?? "-"
            svg.text(accuracy, x: left + cell * Double(n) + 55, y: top + cell * (Double(t) + 0.5) + 4, size: 12, anchor: .middle)
        }
        return svg.render()
    }
}
