// Structural limits every consumer of a graph relies on: how deeply subgraphs may nest, found
// without recursion so that a hostile model cannot exhaust the stack before it is refused.

extension Graph {
    /// Subgraphs (If / Loop / Scan bodies) may nest this deep; the main graph is level 0.
    /// Every graph walk in the toolkit (conversion, checking, planning) may recurse this far.
    public static let maxSubgraphDepth = 64

    /// A node holding a subgraph at a depth above `limit` (the main graph's nodes hold depth-1
    /// subgraphs), and that depth; `nil` when every subgraph is within the limit. Iterative: the
    /// walk itself never recurses.
    public func nodeNestingTooDeep(limit: Int = Graph.maxSubgraphDepth) -> (node: Node, depth: Int)? {
        var stack: [(graph: Graph, depth: Int)] = [(self, 0)]
        while let (graph, depth) = stack.popLast() {
            for node in graph.nodes {
                for attribute in node.attributes {
                    let subgraphs: [Graph]
                    switch attribute.value {
                    case .graph(let g): subgraphs = [g]
                    case .graphs(let gs): subgraphs = gs
                    default: continue
                    }
                    if subgraphs.isEmpty { continue }
                    if depth + 1 > limit { return (node, depth + 1) }
                    for g in subgraphs { stack.append((g, depth + 1)) }
                }
            }
        }
        return nil
    }

    /// The message for a graph whose subgraphs nest deeper than `Graph.maxSubgraphDepth`.
    public static func nestingMessage(node: Node, depth: Int) -> String {
        "node '\(node.name)' (\(node.opType)) holds a subgraph at nesting depth \(depth), deeper than the limit of \(maxSubgraphDepth)"
    }
}
