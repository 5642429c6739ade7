//! The step graph: edges from producers to consumers, cycles and topological layers.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// A DAG over step indices. Edge `a -> b` means step `b` needs an output of step `a`.
pub struct StepGraph {
    graph: DiGraph<usize, usize>,
}

impl StepGraph {
    /// `edges` are `(producer, consumer, label)`; the label is carried through to cycles.
    pub fn new(n_steps: usize, edges: &[(usize, usize, usize)]) -> Self {
        let mut graph = DiGraph::with_capacity(n_steps, edges.len());
        for i in 0..n_steps {
            graph.add_node(i);
        }
        for &(a, b, label) in edges {
            graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), label);
        }
        StepGraph { graph }
    }

    /// Every cycle's path as step indices (`[a, b, c]` means a -> b -> c -> a), one per
    /// strongly connected component, in a stable order.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let start = *scc.iter().min().expect("non-empty");
            out.push(self.cycle_through(start, &scc));
        }
        out.sort();
        out
    }

    /// A shortest cycle through `start` inside its component (breadth-first).
    fn cycle_through(&self, start: NodeIndex, scc: &[NodeIndex]) -> Vec<usize> {
        use std::collections::{HashMap, VecDeque};
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut seen = vec![start];
        while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self.graph.neighbors(n).collect();
            next.sort();
            for m in next {
                if m == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return path.into_iter().map(|i| self.graph[i]).collect();
                }
                if scc.contains(&m) && !seen.contains(&m) {
                    seen.push(m);
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        vec![self.graph[start]]
    }

    /// Topological layers: a step's layer is one more than its deepest producer's.
    /// Steps in one layer are independent of each other. Requires an acyclic graph.
    pub fn layers(&self) -> Vec<Vec<usize>> {
        let order = petgraph::algo::toposort(&self.graph, None).expect("checked acyclic");
        let mut depth = vec![0usize; self.graph.node_count()];
        for n in order {
            for m in self.graph.neighbors(n) {
                depth[m.index()] = depth[m.index()].max(depth[n.index()] + 1);
            }
        }
        let max = depth.iter().copied().max().unwrap_or(0);
        let mut layers = vec![Vec::new(); if depth.is_empty() { 0 } else { max + 1 }];
        for (i, d) in depth.iter().enumerate() {
            layers[*d].push(i);
        }
        layers
    }

    /// Every step downstream of `step` (not including it).
    pub fn descendants(&self, step: usize) -> Vec<usize> {
        let mut dfs = petgraph::visit::Dfs::new(&self.graph, NodeIndex::new(step));
        let mut out = Vec::new();
        while let Some(n) = dfs.next(&self.graph) {
            if n.index() != step {
                out.push(n.index());
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_a_diamond() {
        let g = StepGraph::new(4, &[(0, 1, 0), (0, 2, 0), (1, 3, 0), (2, 3, 0)]);
        assert_eq!(g.layers(), vec![vec![0], vec![1, 2], vec![3]]);
        assert!(g.cycles().is_empty());
        assert_eq!(g.descendants(1), vec![3]);
    }

    #[test]
    fn finds_self_loop_and_long_cycle() {
        let g = StepGraph::new(5, &[(0, 0, 0), (1, 2, 0), (2, 3, 0), (3, 1, 0), (3, 4, 0)]);
        assert_eq!(g.cycles(), vec![vec![0], vec![1, 2, 3]]);
    }
}
