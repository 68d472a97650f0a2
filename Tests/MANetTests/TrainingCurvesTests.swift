// The curves SVG read back as a picture: two panels with their own axes, the labels and title
// given, a test loss that does not squash the accuracies, a log axis for losses over decades.

import Foundation
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import MANet

/// What one panel (`<g id="...">`) of a curves SVG draws, read from the document's elements.
struct DrawnPanel {
    /// Labels left of the y axis (text anchored at its end), top of the document first.
    var yTicks: [(value: Double, y: Double)] = []
    /// Labels under the x axis (11 px, centred).
    var xTicks: [String] = []
    /// The y axis: the vertical axis line's ends in pixels (top < bottom).
    var axisTop = Double.nan, axisBottom = Double.nan
    /// Every curve's tooltip and the pixel y of its points.
    var curves: [(title: String, ys: [Double])] = []

    init(_ svg: String, id: String) throws {
        let document = try XMLDocument(xmlString: svg)
        // Read through `attributes`: FoundationXML's `attribute(forName:)` finds nothing in an
        // element under a default namespace (`xmlns="http://www.w3.org/2000/svg"`).
        func attribute(_ e: XMLElement, _ name: String) -> String? {
            e.attributes?.first { $0.name == name }?.stringValue
        }
        func find(_ node: XMLNode) -> XMLElement? {
            if let e = node as? XMLElement, e.name == "g", attribute(e, "id") == id { return e }
            for child in node.children ?? [] { if let found = find(child) { return found } }
            return nil
        }
        guard let group = find(document) else { throw DrawnPanelError(description: "no <g id=\"\(id)\"> in the SVG") }
        for case let e as XMLElement in group.children ?? [] {
            func number(_ name: String) -> Double { Double(attribute(e, name) ?? "") ?? .nan }
            switch e.name {
            case "text":
                let anchor = attribute(e, "text-anchor")
                if anchor == "end", let value = Double(e.stringValue ?? "") {
                    yTicks.append((value, number("y")))
                } else if anchor == "middle", number("font-size") == 11 {
                    xTicks.append(e.stringValue ?? "")
                }
            case "line":
                if number("x1") == number("x2"), abs(number("y2") - number("y1")) > 20 {
                    axisTop = min(number("y1"), number("y2"))
                    axisBottom = max(number("y1"), number("y2"))
                }
            case "polyline":
                let points = (attribute(e, "points") ?? "").split(separator: " ")
                let ys = points.compactMap { $0.split(separator: ",").last.flatMap { Double($0) } }
                let title = (e.children ?? []).first { $0.name == "title" }?.stringValue ?? ""
                curves.append((title, ys))
            default:
                break
            }
        }
    }

    /// The pixel y range of the curves whose tooltip ends with `metric`, as a fraction of the axis.
    func extent(of metric: String) -> Double {
        let ys = curves.filter { $0.title.hasSuffix(": " + metric) }.flatMap(\.ys)
        guard let low = ys.min(), let high = ys.max() else { return .nan }
        return (high - low) / (axisBottom - axisTop)
    }
}

struct DrawnPanelError: Error, CustomStringConvertible { var description: String }

final class TrainingCurvesTests: XCTestCase {
    /// A log in the authors' format with the given per-epoch values.
    func log(_ source: String, testAccuracy: [Double], trainAccuracy: [Double],
             trainLoss: [Double], testLoss: [Double]) throws -> TrainingLog {
        var text = ""
        for epoch in testAccuracy.indices {
            text += "Current learning rate: 0.01\n"
            text += String(format: "Epoch: [%d][0/4]\tLoss %.4f (%.4f)\tAccuracy %.3f (%.3f)\n",
                           epoch, trainLoss[epoch], trainLoss[epoch], trainAccuracy[epoch], trainAccuracy[epoch])
            text += String(format: "Test: [0/2]\tLoss %.4f (%.4f)\tAccuracy %.3f (%.3f)\n",
                           testLoss[epoch], testLoss[epoch], testAccuracy[epoch], testAccuracy[epoch])
            text += String(format: " * Accuracy %.3f\nCurrent best accuracy: %.3f\n10.0\n",
                           testAccuracy[epoch], testAccuracy[0...epoch].max()!)
        }
        return try LogParser.parse(text, source: source)
    }

    /// Two trainers, two seeds each; one run's test loss climbs to 10 (what a diverging
    /// evaluation prints). Accuracy keeps its own axis and fills it; the loss has its own.
    func testAccuracyAndLossPanelsWithLabelsAndTitle() throws {
        let runs = [
            try log("a/seed-1.log", testAccuracy: [10, 20, 35], trainAccuracy: [12, 18, 30], trainLoss: [2, 1.9, 1.8], testLoss: [2, 3, 10]),
            try log("a/seed-2.log", testAccuracy: [12, 22, 30], trainAccuracy: [11, 19, 28], trainLoss: [2, 1.9, 1.7], testLoss: [2, 2.5, 4]),
            try log("b/seed-1.log", testAccuracy: [11, 18, 33], trainAccuracy: [10, 17, 29], trainLoss: [2, 1.95, 1.8], testLoss: [2, 2.8, 6]),
            try log("b/seed-2.log", testAccuracy: [13, 21, 31], trainAccuracy: [12, 20, 27], trainLoss: [2, 1.9, 1.75], testLoss: [2, 2.4, 5]),
        ]
        let svg = TrainingCurves.svg(runs, labels: ["PyTorch", "PyTorch", "manet", "manet"], title: "PyTorch & manet, width 64")
        XCTAssertNoThrow(try XMLDocument(xmlString: svg))
        XCTAssertTrue(svg.contains(">PyTorch &amp; manet, width 64</text>"), svg)
        for row in ["PyTorch (2 runs)", "manet (2 runs)", "test", "train"] {
            XCTAssertTrue(svg.contains(">\(row)</text>"), row)
        }

        let accuracy = try DrawnPanel(svg, id: "accuracy"), loss = try DrawnPanel(svg, id: "loss")
        for panel in [accuracy, loss] {
            XCTAssertGreaterThan(panel.axisBottom - panel.axisTop, 100)
            XCTAssertEqual(panel.curves.count, 8)
        }
        // The accuracy axis is set by the accuracies alone: it ends at a tick >= 35 and <= 100,
        // and the accuracy curves (10..35) fill more than half of it.
        let accuracyTop = try XCTUnwrap(accuracy.yTicks.map(\.value).max())
        XCTAssertTrue(accuracyTop >= 35 && accuracyTop <= 100, "\(accuracy.yTicks)")
        XCTAssertGreaterThan(accuracy.extent(of: "test accuracy"), 0.5)
        // The loss axis reaches the test loss of 10; 1.7..10 is under 10x: linear, from 0.
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(loss.yTicks.map(\.value).max()), 10)
        XCTAssertEqual(loss.yTicks.map(\.value).min(), 0)
        XCTAssertTrue(svg.contains(">loss</text>") && !svg.contains("log scale"), svg)
        // A curve's tooltip names its label, run and metric; colours follow the labels.
        XCTAssertTrue(loss.curves.contains { $0.title == "manet (b/seed-2): test loss" }, "\(loss.curves.map(\.title))")
        XCTAssertTrue(accuracy.curves.contains { $0.title == "PyTorch (a/seed-1): train accuracy" })
    }

    /// Losses over two decades: a log axis whose ticks cover them, where 0.5 sits halfway
    /// between 0.05 and 5.
    func testLossesOverDecadesGetALogAxis() throws {
        let run = try log("run.log", testAccuracy: [20, 40, 60], trainAccuracy: [20, 50, 90],
                          trainLoss: [5, 0.5, 0.05], testLoss: [4, 1, 0.8])
        let svg = TrainingCurves.svg([run])
        XCTAssertTrue(svg.contains(">loss (log scale)</text>"), svg)
        let loss = try DrawnPanel(svg, id: "loss")
        XCTAssertEqual(loss.yTicks.map(\.value).sorted(), [0.05, 0.1, 0.2, 0.5, 1, 2, 5])
        let y = Dictionary(uniqueKeysWithValues: loss.yTicks.map { ($0.value, $0.y) })
        XCTAssertEqual(y[0.5]! - y[5]!, y[0.05]! - y[0.5]!, accuracy: 0.05)
        let train = try XCTUnwrap(loss.curves.first { $0.title == "run: train loss" })
        // Tick labels sit 4 px below their line.
        XCTAssertEqual(train.ys.count, 3)
        for (drawn, tickLabel) in zip(train.ys, [y[5]!, y[0.5]!, y[0.05]!]) {
            XCTAssertEqual(drawn, tickLabel - 4, accuracy: 0.02)
        }
        // One run: named by its file stem, titled by it.
        XCTAssertTrue(svg.contains(">run</text>"), svg)
    }

    func testLogTicks() {
        XCTAssertEqual(logTicks(low: 0.3, high: 4), [0.2, 0.5, 1, 2, 5])
        XCTAssertEqual(logTicks(low: 0.2, high: 5), [0.2, 0.5, 1, 2, 5])
        XCTAssertEqual(logTicks(low: 0.01, high: 500), [0.01, 0.1, 1, 10, 100, 1000])
    }

    /// Default labels: logs sharing a file name in seed folders form groups; logs whose names
    /// do not split them (all alike, or all different) stay one run each.
    func testDefaultLabels() throws {
        func run(_ source: String) throws -> TrainingLog {
            try log(source, testAccuracy: [10], trainAccuracy: [10], trainLoss: [2], testLoss: [2])
        }
        let seeds = try ["s1/pytorch.log", "s2/pytorch.log", "s1/manet.log", "s2/manet.log"].map(run)
        XCTAssertEqual(TrainingCurves.defaultLabels(seeds), ["pytorch", "pytorch", "manet", "manet"])
        XCTAssertTrue(TrainingCurves.svg(seeds).contains(">pytorch (2 runs) vs manet (2 runs)</text>"))
        let trainRuns = try ["runs/train-1/log.txt", "runs/train-2/log.txt", "runs/train-3/log.txt"].map(run)
        XCTAssertEqual(TrainingCurves.defaultLabels(trainRuns), ["train-1/log", "train-2/log", "train-3/log"])
        XCTAssertEqual(TrainingCurves.defaultLabels(try ["x.log", "y.log"].map(run)), ["x", "y"])
    }
}
