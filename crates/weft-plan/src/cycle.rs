//! Dependency cycles: finding every one of them, and showing each as a path.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use petgraph::Direction::Outgoing;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::{EdgeKind, PlannedStage};

/// A cycle, as the path of stage ids along the edges, the first id repeated at the end.
///
/// The path follows the edges, from a dependency to its dependent: each id is needed by the
/// id after it. `["a", "b", "c", "a"]`, shown as `a -> b -> c -> a`, means that `b` depends on
/// `a`, `c` depends on `b`, and `a` depends on `c`. A self edge shows as `a -> a`.
///
/// The path starts at the stage of the cycle that was given first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{}", .path.join(" -> "))]
pub struct Cycle {
    /// The stage ids along the cycle, the first repeated at the end.
    pub path: Vec<String>,
}

/// Every cycle of the graph, sorted by the input order of its first stage.
///
/// Each self edge is one cycle. Each strongly connected group of two stages or more is one
/// more: the shortest cycle through its first stage that uses no self edge.
pub(crate) fn find_cycles(graph: &DiGraph<PlannedStage, EdgeKind>) -> Vec<Cycle> {
    let mut cycles: Vec<Vec<NodeIndex>> = graph
        .node_indices()
        .filter(|&node| graph.contains_edge(node, node))
        .map(|node| vec![node, node])
        .collect();

    let groups = kosaraju_scc(graph);
    let mut group_of = vec![0; graph.node_count()];
    for (number, group) in groups.iter().enumerate() {
        for node in group {
            group_of[node.index()] = number;
        }
    }

    for group in groups.iter().filter(|group| group.len() > 1) {
        let first = *group
            .iter()
            .min()
            .expect("the group has two stages or more");
        cycles.push(shortest_cycle(graph, first, &group_of));
    }

    // Paths compare by their first stage, then by their second, so a self edge comes before
    // a longer cycle through the same stage.
    cycles.sort_unstable();

    cycles
        .into_iter()
        .map(|path| Cycle {
            path: path
                .into_iter()
                .map(|node| graph[node].id.clone())
                .collect(),
        })
        .collect()
}

/// A breadth-first search from `start` back to itself, staying inside its group and off self
/// edges, visiting dependents in input order.
///
/// # Panics
///
/// When `start` has no cycle back to itself within its group, which cannot happen for a
/// group of two stages or more: every stage of a strongly connected group reaches every
/// other.
fn shortest_cycle(
    graph: &DiGraph<PlannedStage, EdgeKind>,
    start: NodeIndex,
    group_of: &[usize],
) -> Vec<NodeIndex> {
    let group = group_of[start.index()];
    let mut parent = HashMap::new();
    let mut queue = VecDeque::from([start]);

    while let Some(node) = queue.pop_front() {
        let mut dependents: Vec<_> = graph
            .neighbors_directed(node, Outgoing)
            .filter(|&next| next != node && group_of[next.index()] == group)
            .collect();
        dependents.sort_unstable();

        for next in dependents {
            if next == start {
                return path_back(&parent, start, node);
            }
            if let Entry::Vacant(entry) = parent.entry(next) {
                entry.insert(node);
                queue.push_back(next);
            }
        }
    }

    unreachable!("every stage of a strongly connected group lies on a cycle within it")
}

/// The path `start -> ... -> last -> start`, read back from the search's parent links.
fn path_back(
    parent: &HashMap<NodeIndex, NodeIndex>,
    start: NodeIndex,
    last: NodeIndex,
) -> Vec<NodeIndex> {
    let mut path = vec![start, last];
    let mut node = last;
    while let Some(&previous) = parent.get(&node) {
        path.push(previous);
        node = previous;
    }

    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use crate::Plan;
    use crate::plan::tests::stage;

    fn cycles(stages: Vec<crate::StageNode>) -> Vec<String> {
        let cycles = Plan::build(stages).expect_err("the test graph has a cycle");
        cycles.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_self_edge_is_a_cycle_of_length_one() {
        assert_eq!(cycles(vec![stage("a", &[], &["a"])]), ["a -> a"]);
        assert_eq!(cycles(vec![stage("a", &["a"], &[])]), ["a -> a"]);
    }

    #[test]
    fn a_cycle_path_follows_edges_from_dependency_to_dependent() {
        let found = cycles(vec![
            stage("a", &["c"], &[]),
            stage("b", &[], &["a"]),
            stage("c", &["b"], &[]),
        ]);

        assert_eq!(found, ["a -> b -> c -> a"]);
    }

    #[test]
    fn two_disjoint_cycles_are_both_reported_in_input_order() {
        let found = cycles(vec![
            stage("x", &["y"], &[]),
            stage("a", &["b"], &[]),
            stage("b", &["a"], &[]),
            stage("y", &["x"], &[]),
            stage("fine", &["a"], &[]),
        ]);

        assert_eq!(found, ["x -> y -> x", "a -> b -> a"]);
    }

    #[test]
    fn a_self_edge_inside_a_larger_cycle_is_reported_besides_it() {
        let found = cycles(vec![stage("a", &["b", "a"], &[]), stage("b", &["a"], &[])]);

        assert_eq!(found, ["a -> a", "a -> b -> a"]);
    }

    #[test]
    fn a_cycle_path_is_a_real_path_along_the_edges() {
        let stages = vec![
            stage("a", &["e"], &[]),
            stage("b", &["a"], &[]),
            stage("c", &["a", "b"], &[]),
            stage("d", &["c"], &["b"]),
            stage("e", &["d"], &[]),
            stage("f", &["e"], &[]),
        ];
        let plan_edges: Vec<(String, String)> = stages
            .iter()
            .flat_map(|stage| {
                let dependencies = stage.reads.iter().chain(&stage.needs);
                dependencies.map(|dependency| (dependency.clone(), stage.id.clone()))
            })
            .collect();

        let cycles = Plan::build(stages).expect_err("the test graph has a cycle");

        assert_eq!(cycles.len(), 1);
        let path = &cycles[0].path;
        assert_eq!(path.first().map(String::as_str), Some("a"));
        assert_eq!(path.first(), path.last());
        for step in path.windows(2) {
            let edge = (step[0].clone(), step[1].clone());
            assert!(
                plan_edges.contains(&edge),
                "{} -> {} is no edge",
                edge.0,
                edge.1
            );
        }
        assert_eq!(cycles[0].to_string(), "a -> b -> d -> e -> a");
    }

    #[test]
    fn stages_downstream_of_a_cycle_are_not_reported() {
        let found = cycles(vec![
            stage("a", &["b"], &[]),
            stage("b", &["a"], &[]),
            stage("c", &["b"], &[]),
            stage("d", &["c"], &[]),
        ]);

        assert_eq!(found, ["a -> b -> a"]);
    }

    #[test]
    fn a_ten_thousand_stage_cycle_is_reported_whole() {
        let ids: Vec<String> = (0..10_000).map(|n| format!("s{n}")).collect();
        let stages = ids
            .iter()
            .enumerate()
            .map(|(n, id)| stage(id, &[&ids[(n + 1) % ids.len()]], &[]))
            .collect();

        let cycles = Plan::build(stages).expect_err("the test graph has a cycle");

        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].path.len(), 10_001);
        assert_eq!(cycles[0].path[..3], ["s0", "s9999", "s9998"]);
    }
}
