// Shared SVG primitives: an escaped element writer, "nice" axis ticks, a plot panel and a line chart.
//
// For the trainer's per-epoch curves (and anything else that plots numbers against epochs),
// reuse `LineChart`: build one `LineChart.Series` per curve and call `render()`; the result is a
// standalone SVG document with axes, ticks, a legend and a title. Several plots in one document
// (`TrainingCurves`: accuracy and loss side by side) draw one `ChartPanel` each into one
// `SVGWriter`. No dependency: the output is plain text, viewable in any browser.

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

    /// An open polyline through `points` (pixel coordinates). A `title` becomes the curve's
    /// tooltip in a browser (an SVG `<title>` child).
    public mutating func polyline(_ points: [(x: Double, y: Double)], stroke: String,
                                  width: Double = 1.5, dash: String? = nil, title: String? = nil) {
        guard !points.isEmpty else { return }
        let coordinates = points.map { "\(Self.number($0.x)),\(Self.number($0.y))" }.joined(separator: " ")
        var attrs = [("points", coordinates), ("fill", "none"), ("stroke", stroke),
                     ("stroke-width", Self.number(width)), ("stroke-linejoin", "round")]
        if let dash { attrs.append(("stroke-dasharray", dash)) }
        if let title {
            body.append("<polyline\(Self.attributes(attrs))><title>\(Self.escape(title))</title></polyline>")
        } else {
            body.append("<polyline\(Self.attributes(attrs))/>")
        }
    }

    /// Opens a `<g>` element; what follows until `endGroup()` belongs to it. An `id` names a
    /// part of the picture (a panel) for programs that read the SVG.
    public mutating func beginGroup(id: String? = nil) {
        body.append("<g\(Self.attributes(id.map { [("id", $0)] } ?? []))>")
    }

    public mutating func endGroup() {
        body.append("</g>")
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

/// Ticks of a logarithmic axis covering `[low, high]` (both > 0): 1, 2 and 5 times each power of
/// ten when the range spans at most three decades, else the powers of ten only. The first tick is
/// at or below `low` and the last at or above `high`, so the axis ends on labelled lines.
public func logTicks(low: Double, high: Double) -> [Double] {
    guard low > 0, high >= low, low.isFinite, high.isFinite else { return [] }
    let lowDecade = Int(floor(log10(low))), highDecade = Int(ceil(log10(high)))
    let mantissas: [Double] = highDecade - lowDecade <= 3 ? [1, 2, 5] : [1]
    var candidates: [Double] = []
    for decade in lowDecade...max(lowDecade, highDecade) {
        for m in mantissas { candidates.append(m * pow(10, Double(decade))) }
    }
    // Relative slack: 0.2 read from a log must not miss the tick 0.2 by a rounding error.
    let first = candidates.last { $0 <= low * (1 + 1e-9) } ?? candidates[0]
    let last = candidates.first { $0 >= high * (1 - 1e-9) } ?? candidates[candidates.count - 1]
    return candidates.filter { $0 >= first && $0 <= last }
}

/// One plot area: axes, ticks, grid lines and curves, drawn into a frame of a larger document.
public struct ChartPanel {
    public enum Scale { case linear, logarithmic }

    public var title: String?
    public var xLabel: String
    public var yLabel: String
    public var series: [LineChart.Series]
    /// `.linear` starts at 0 (or the smallest value if negative); `.logarithmic` covers the
    /// positive values, and a value <= 0 is drawn on the bottom line.
    public var yScale: Scale = .linear
    /// Ticks on the x axis only at whole numbers (epochs).
    public var integerX = false

    public init(title: String? = nil, xLabel: String, yLabel: String, series: [LineChart.Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// The y axis's ticks, lowest first; the axis runs from the first to the last.
    public func yTicks() -> [Double] {
        let values = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }.map(\.y)
        guard let yMin = values.min(), let yMax = values.max() else { return [] }
        switch yScale {
        case .logarithmic:
            let positive = values.filter { $0 > 0 }
            guard let low = positive.min(), let high = positive.max() else { return [] }
            return logTicks(low: low, high: high)
        case .linear:
            let low = min(0, yMin), high = yMax == low ? low + 1 : yMax
            var ticks = niceTicks(low: low, high: high)
            // Extend the axis to whole ticks at both ends so its first and last lines are labelled.
            if ticks.count > 1 {
                let step = ticks[1] - ticks[0]
                if ticks[0] > low { ticks.insert(ticks[0] - step, at: 0) }
                if let last = ticks.last, last < high { ticks.append(last + step) }
            }
            return ticks
        }
    }

    /// Draws the panel inside `left...right` x `top...bottom` (the plot area; labels go outside
    /// it: tick labels left of `left` and below `bottom`, axis labels further out).
    public func draw(into svg: inout SVGWriter, left: Double, top: Double, right: Double, bottom: Double) {
        if let title { svg.text(title, x: (left + right) / 2, y: top - 10, size: 13, anchor: .middle, bold: true) }
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let ticks = yTicks()
        guard let yLow = ticks.first, let yHigh = ticks.last, yHigh > yLow, !all.isEmpty else {
            svg.text("no data", x: (left + right) / 2, y: (top + bottom) / 2, anchor: .middle)
            return
        }
        var xLow = all.map(\.x).min()!, xHigh = all.map(\.x).max()!
        if xHigh == xLow { xLow -= 1; xHigh += 1 }
        let logarithmic = yScale == .logarithmic
        func px(_ x: Double) -> Double { left + (x - xLow) / (xHigh - xLow) * (right - left) }
        func py(_ y: Double) -> Double {
            let fraction = logarithmic
                ? (y > 0 ? (log10(y) - log10(yLow)) / (log10(yHigh) - log10(yLow)) : 0)
                : (y - yLow) / (yHigh - yLow)
            return bottom - fraction * (bottom - top)
        }

        for t in ticks {
            svg.line(x1: left, y1: py(t), x2: right, y2: py(t), stroke: "#e0e0e0")
            svg.text(LineChart.label(t), x: left - 6, y: py(t) + 4, size: 11, anchor: .end)
        }
        // Whole-number ticks: at most one per unit (a 0.1 step summed ten times misses 1).
        let xCount = integerX ? max(1, min(10, Int((xHigh - xLow).rounded()))) : 10
        for t in niceTicks(low: xLow, high: xHigh, count: xCount) where !integerX || t == t.rounded() {
            svg.line(x1: px(t), y1: bottom, x2: px(t), y2: bottom + 5, stroke: "#444")
            svg.text(LineChart.label(t), x: px(t), y: bottom + 18, size: 11, anchor: .middle)
        }
        svg.line(x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#444")
        svg.line(x1: left, y1: top, x2: left, y2: bottom, stroke: "#444")
        svg.text(xLabel, x: (left + right) / 2, y: bottom + 38, size: 12, anchor: .middle)
        svg.text(yLabel, x: left - 46, y: (top + bottom) / 2, size: 12, anchor: .middle, rotate: -90)

        for s in series {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { (x: px($0.x), y: py($0.y)) }
            svg.polyline(points, stroke: s.color, dash: s.dash, title: s.name)
        }
    }
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
        var panel = ChartPanel(xLabel: xLabel, yLabel: yLabel, series: series)
        panel.integerX = integerX
        panel.draw(into: &svg, left: left, top: top, right: right, bottom: bottom)
        Self.drawLegend(legend ?? series, into: &svg, x: right + 16, top: top + 10)
        return svg.render()
    }

    /// One row per entry, 20 px apart: a short stroke sample then the name.
    public static func drawLegend(_ rows: [Series], into svg: inout SVGWriter, x: Double, top: Double) {
        for (i, s) in rows.enumerated() {
            let y = top + Double(i) * 20
            svg.line(x1: x, y1: y, x2: x + 30, y2: y, stroke: s.color, width: 2, dash: s.dash)
            svg.text(s.name, x: x + 36, y: y + 4, size: 11)
        }
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e9 { return String(Int(v)) }
        return String(format: "%g", v)
    }
}
