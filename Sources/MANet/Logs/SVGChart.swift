// Shared SVG primitives: an escaped element writer, "nice" axis ticks and a multi-series line chart.
//
// For the trainer's per-epoch curves (and anything else that plots numbers against epochs),
// reuse `LineChart`: build one `LineChart.Series` per curve and call `render()`; the result is a
// standalone SVG document with axes, ticks, a legend and a title. `manet logs --svg` uses it
// through `TrainingCurves`. No dependency: the output is plain text, viewable in any browser.

import Foundation

/// Builds an SVG document element by element, escaping every text and attribute.
public struct SVGWriter {
    public let width: Double
    public let height: Double
    private var body: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// Escapes `&`, `<`, `>` and quotes, so a file name in a title cannot break the document.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Numbers with at most two decimals: enough for pixels, and keeps files small.
    public static func number(_ v: Double) -> String {
        let rounded = (v * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.2f", rounded)
    }

    private static func attributes(_ attrs: [(String, String)]) -> String {
        attrs.map { " \($0.0)=\"\(escape($0.1))\"" }.joined()
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double,
                              stroke: String, width: Double = 1, dash: String? = nil) {
        var attrs = [("x1", Self.number(x1)), ("y1", Self.number(y1)), ("x2", Self.number(x2)),
                     ("y2", Self.number(y2)), ("stroke", stroke), ("stroke-width", Self.number(width))]
        if let dash { attrs.append(("stroke-dasharray", dash)) }
        body.append("<line\(Self.attributes(attrs))/>")
    }

    public mutating func rect(x: Double, y: Double, width: Double, height: Double,
                              fill: String, stroke: String? = nil) {
        var attrs = [("x", Self.number(x)), ("y", Self.number(y)), ("width", Self.number(width)),
                     ("height", Self.number(height)), ("fill", fill)]
        if let stroke { attrs.append(("stroke", stroke)) }
        body.append("<rect\(Self.attributes(attrs))/>")
    }

    /// An open polyline through `points` (pixel coordinates).
    public mutating func polyline(_ points: [(x: Double, y: Double)], stroke: String,
                                  width: Double = 1.5, dash: String? = nil) {
        guard !points.isEmpty else { return }
        let coordinates = points.map { "\(Self.number($0.x)),\(Self.number($0.y))" }.joined(separator: " ")
        var attrs = [("points", coordinates), ("fill", "none"), ("stroke", stroke),
                     ("stroke-width", Self.number(width)), ("stroke-linejoin", "round")]
        if let dash { attrs.append(("stroke-dasharray", dash)) }
        body.append("<polyline\(Self.attributes(attrs))/>")
    }

    public enum Anchor: String { case start, middle, end }

    public mutating func text(_ content: String, x: Double, y: Double, size: Double = 12,
                              anchor: Anchor = .start, rotate: Double? = nil, bold: Bool = false) {
        var attrs = [("x", Self.number(x)), ("y", Self.number(y)), ("font-size", Self.number(size)),
                     ("text-anchor", anchor.rawValue), ("font-family", "sans-serif")]
        if bold { attrs.append(("font-weight", "bold")) }
        if let rotate { attrs.append(("transform", "rotate(\(Self.number(rotate)) \(Self.number(x)) \(Self.number(y)))")) }
        body.append("<text\(Self.attributes(attrs))>\(Self.escape(content))</text>")
    }

    /// The complete document.
    public func render() -> String {
        let w = Self.number(width), h = Self.number(height)
        return """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(w)" height="\(h)" viewBox="0 0 \(w) \(h)">
        \(body.joined(separator: "\n"))
        </svg>

        """
    }
}

/// Axis ticks at 1, 2 or 5 times a power of ten, covering `[low, high]` with about `count` steps.
public func niceTicks(low: Double, high: Double, count: Int = 6) -> [Double] {
    guard low.isFinite, high.isFinite, count > 0 else { return [] }
    let span = high - low
    guard span > 0 else { return [low] }
    let raw = span / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var ticks: [Double] = []
    var t = (low / step).rounded(.down) * step
    while t <= high + step * 1e-9 {
        if t >= low - step * 1e-9 { ticks.append(abs(t) < step * 1e-9 ? 0 : t) }
        t += step
    }
    return ticks
}

/// A line chart of several series over a shared x and y axis.
public struct LineChart {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Any SVG colour (`#1f77b4`, `teal`).
        public var color: String
        /// An SVG `stroke-dasharray` (`"6 3"`), or `nil` for a solid line.
        public var dash: String?

        public init(name: String, points: [(x: Double, y: Double)], color: String, dash: String? = nil) {
            self.name = name
            self.points = points
            self.color = color
            self.dash = dash
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Legend rows (a stroke sample and a name each) in place of one row per series: for a chart
    /// whose styles combine two keys (colour = run, dash = metric), one row per key value.
    public var legend: [Series]?
    /// Ticks on the x axis only at whole numbers (epochs).
    public var integerX = false
    public var width: Double = 900
    public var height: Double = 540

    /// A qualitative palette (colour-blind friendly, after Okabe and Ito).
    public static let palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    public func render() -> String {
        var svg = SVGWriter(width: width, height: height)
        let legendWidth = 230.0
        let left = 64.0, right = width - legendWidth, top = 40.0, bottom = height - 52
        svg.rect(x: 0, y: 0, width: width, height: height, fill: "white")
        svg.text(title, x: (left + right) / 2, y: 24, size: 15, anchor: .middle, bold: true)

        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else {
            svg.text("no data", x: (left + right) / 2, y: (top + bottom) / 2, anchor: .middle)
            return svg.render()
        }
        var xLow = all.map(\.x).min()!, xHigh = all.map(\.x).max()!
        var yLow = min(0, all.map(\.y).min()!), yHigh = all.map(\.y).max()!
        if xHigh == xLow { xLow -= 1; xHigh += 1 }
        if yHigh == yLow { yHigh = yLow + 1 }
        let yTicks = niceTicks(low: yLow, high: yHigh)
        // Extend the axis to whole ticks so the top line is labelled.
        if let step = yTicks.count > 1 ? yTicks[1] - yTicks[0] : nil, let lastTick = yTicks.last, lastTick < yHigh {
            yHigh = lastTick + step
        }
        yLow = min(yLow, yTicks.first ?? yLow)
        func px(_ x: Double) -> Double { left + (x - xLow) / (xHigh - xLow) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yLow) / (yHigh - yLow) * (bottom - top) }

        for t in niceTicks(low: yLow, high: yHigh) {
            svg.line(x1: left, y1: py(t), x2: right, y2: py(t), stroke: "#e0e0e0")
            svg.text(Self.label(t), x: left - 6, y: py(t) + 4, size: 11, anchor: .end)
        }
        // Whole-number ticks: at most one per unit (a 0.1 step summed ten times misses 1).
        let xCount = integerX ? max(1, min(10, Int((xHigh - xLow).rounded()))) : 10
        for t in niceTicks(low: xLow, high: xHigh, count: xCount) where !integerX || t == t.rounded() {
            svg.line(x1: px(t), y1: bottom, x2: px(t), y2: bottom + 5, stroke: "#444")
            svg.text(Self.label(t), x: px(t), y: bottom + 18, size: 11, anchor: .middle)
        }
        svg.line(x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#444")
        svg.line(x1: left, y1: top, x2: left, y2: bottom, stroke: "#444")
        svg.text(xLabel, x: (left + right) / 2, y: height - 14, size: 12, anchor: .middle)
        svg.text(yLabel, x: 18, y: (top + bottom) / 2, size: 12, anchor: .middle, rotate: -90)

        for s in series {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { (x: px($0.x), y: py($0.y)) }
            svg.polyline(points, stroke: s.color, dash: s.dash)
        }
        // Legend: one row per series (or per given legend entry), a short stroke sample then the name.
        for (i, s) in (legend ?? series).enumerated() {
            let y = top + 10 + Double(i) * 20
            svg.line(x1: right + 16, y1: y, x2: right + 46, y2: y, stroke: s.color, width: 2, dash: s.dash)
            svg.text(s.name, x: right + 52, y: y + 4, size: 11)
        }
        return svg.render()
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e9 { return String(Int(v)) }
        return String(format: "%g", v)
    }
}
