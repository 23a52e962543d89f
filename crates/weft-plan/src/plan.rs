//! Building a [`Plan`] from stages, and answering questions about its edges.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use petgraph::Direction::{self, Incoming, Outgoing};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::{Cycle, EdgeKind, PlannedStage, StageNode, cycle};

/// The stages of a workflow as a directed acyclic graph.
///
/// # Invariants
///
/// - Node indices follow input order: the stage given first is node 0.
/// - Edges point from a dependency to its dependent, and there is at most one edge between
///   two stages.
/// - The graph has no cycle, self edges included.
#[derive(Debug, Clone)]
pub struct Plan {
    graph: DiGraph<PlannedStage, EdgeKind>,
    index: HashMap<String, NodeIndex>,
    order: Vec<NodeIndex>,
}

impl Plan {
    /// Builds the graph.
    ///
    /// Edges to unknown ids are ignored here (the spec crate reports them), and so is every
    /// stage whose id repeats an earlier one. A stage that reads and needs the same stage
    /// gets one [`EdgeKind::Data`] edge.
    ///
    /// # Errors
    ///
    /// Every cycle, as described on [`Cycle`], sorted by the input order of its first stage.
    /// A self edge (`a` needs or reads `a`) is a cycle of length one.
    pub fn build(stages: Vec<StageNode>) -> Result<Plan, Vec<Cycle>> {
        let (graph, index) = graph_of(stages);

        match topological_order(&graph) {
            Some(order) => Ok(Plan {
                graph,
                index,
                order,
            }),
            None => Err(cycle::find_cycles(&graph)),
        }
    }

    /// The number of stages.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the plan has no stage.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Whether a stage with this id is in the plan.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// A stage by its id.
    pub fn stage(&self, id: &str) -> Option<&PlannedStage> {
        self.index.get(id).map(|&node| &self.graph[node])
    }

    /// The stages in input order.
    pub fn stages(&self) -> impl Iterator<Item = &PlannedStage> {
        self.graph.node_weights()
    }

    /// The graph itself, for algorithms this type does not offer.
    ///
    /// Node indices follow input order and edges point from a dependency to its dependent.
    pub fn graph(&self) -> &DiGraph<PlannedStage, EdgeKind> {
        &self.graph
    }

    /// Stage ids in a deterministic topological order (ties broken by the order stages were
    /// given).
    pub fn order(&self) -> Vec<&str> {
        self.order.iter().map(|&node| self.id(node)).collect()
    }

    /// Topological levels: level 0 holds the stages with no dependency, and a stage's level is
    /// one more than the highest level of its dependencies. Each level lists its ids in input
    /// order.
    pub fn levels(&self) -> Vec<Vec<&str>> {
        let mut level = vec![0; self.len()];

        for &node in &self.order {
            level[node.index()] = self
                .graph
                .neighbors_directed(node, Incoming)
                .map(|dependency| level[dependency.index()] + 1)
                .max()
                .unwrap_or(0);
        }

        let depth = level.iter().max().map_or(0, |deepest| deepest + 1);
        let mut levels = vec![Vec::new(); depth];
        for node in self.graph.node_indices() {
            levels[level[node.index()]].push(self.id(node));
        }
        levels
    }

    /// Direct dependencies of a stage, with the edge kind, in input order. Empty for an
    /// unknown id.
    pub fn dependencies(&self, id: &str) -> Vec<(&str, EdgeKind)> {
        let Some(&node) = self.index.get(id) else {
            return Vec::new();
        };

        let mut dependencies: Vec<_> = self
            .graph
            .edges_directed(node, Incoming)
            .map(|edge| (edge.source(), *edge.weight()))
            .collect();
        dependencies.sort_unstable();

        dependencies
            .into_iter()
            .map(|(dependency, kind)| (self.id(dependency), kind))
            .collect()
    }

    /// Direct dependents of a stage, in input order. Empty for an unknown id.
    pub fn dependents(&self, id: &str) -> Vec<&str> {
        let Some(&node) = self.index.get(id) else {
            return Vec::new();
        };

        let mut dependents: Vec<_> = self.graph.neighbors_directed(node, Outgoing).collect();
        dependents.sort_unstable();

        dependents.into_iter().map(|node| self.id(node)).collect()
    }

    /// All stages this one depends on, directly or not (for `success()`), in input order.
    /// Empty for an unknown id.
    pub fn ancestors(&self, id: &str) -> Vec<&str> {
        self.reachable(id, Incoming)
    }

    /// All stages depending on this one, directly or not (for `on_error: continue`), in input
    /// order. Empty for an unknown id.
    pub fn descendants(&self, id: &str) -> Vec<&str> {
        self.reachable(id, Outgoing)
    }

    /// The id of a node of the graph.
    pub(crate) fn id(&self, node: NodeIndex) -> &str {
        &self.graph[node].id
    }

    /// Every edge as `(dependency, dependent, kind)`, sorted by the input order of the
    /// dependent, then of the dependency.
    pub(crate) fn edges(&self) -> Vec<(NodeIndex, NodeIndex, EdgeKind)> {
        let mut edges: Vec<_> = self
            .graph
            .edge_references()
            .map(|edge| (edge.source(), edge.target(), *edge.weight()))
            .collect();
        edges.sort_unstable_by_key(|&(dependency, dependent, _)| (dependent, dependency));
        edges
    }

    /// The stages reachable from `id` following edges in `direction`, `id` excluded, in input
    /// order.
    fn reachable(&self, id: &str, direction: Direction) -> Vec<&str> {
        let Some(&start) = self.index.get(id) else {
            return Vec::new();
        };

        let mut seen = vec![false; self.len()];
        let mut stack = vec![start];
        let mut found = Vec::new();
        while let Some(node) = stack.pop() {
            for next in self.graph.neighbors_directed(node, direction) {
                if !seen[next.index()] {
                    seen[next.index()] = true;
                    found.push(next);
                    stack.push(next);
                }
            }
        }

        found.sort_unstable();
        found.into_iter().map(|node| self.id(node)).collect()
    }
}

/// Adds one node per stage, in input order, then one edge per resolved dependency.
fn graph_of(
    stages: Vec<StageNode>,
) -> (DiGraph<PlannedStage, EdgeKind>, HashMap<String, NodeIndex>) {
    let mut graph = DiGraph::with_capacity(stages.len(), stages.len());
    let mut index = HashMap::with_capacity(stages.len());
    let mut pending = Vec::with_capacity(stages.len());

    for StageNode {
        id,
        job,
        fan_out,
        reads,
        needs,
    } in stages
    {
        if index.contains_key(&id) {
            continue;
        }
        let node = graph.add_node(PlannedStage {
            id: id.clone(),
            job,
            fan_out,
        });
        index.insert(id, node);
        pending.push((node, reads, needs));
    }

    let mut resolved = Vec::new();
    for (node, reads, needs) in pending {
        resolve(&index, &reads, &needs, &mut resolved);
        for &(dependency, kind) in &resolved {
            graph.add_edge(dependency, node, kind);
        }
    }

    (graph, index)
}

/// Puts in `resolved` the known dependencies of one stage, each once, data edges winning over
/// order edges. The one buffer serves every stage.
fn resolve(
    index: &HashMap<String, NodeIndex>,
    reads: &[String],
    needs: &[String],
    resolved: &mut Vec<(NodeIndex, EdgeKind)>,
) {
    let data = reads.iter().map(|id| (id, EdgeKind::Data));
    let order = needs.iter().map(|id| (id, EdgeKind::Order));

    resolved.clear();
    resolved.extend(
        data.chain(order)
            .filter_map(|(id, kind)| index.get(id).map(|&node| (node, kind))),
    );

    // `Data` sorts before `Order`, so deduplicating keeps the data edge.
    resolved.sort_unstable();
    resolved.dedup_by_key(|&mut (node, _)| node);
}

/// Kahn's algorithm, always taking the ready stage given first. `None` when a cycle leaves
/// some stages waiting forever.
fn topological_order(graph: &DiGraph<PlannedStage, EdgeKind>) -> Option<Vec<NodeIndex>> {
    let mut waiting: Vec<usize> = graph
        .node_indices()
        .map(|node| graph.edges_directed(node, Incoming).count())
        .collect();
    let mut ready: BinaryHeap<_> = graph
        .node_indices()
        .filter(|node| waiting[node.index()] == 0)
        .map(Reverse)
        .collect();

    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(node)) = ready.pop() {
        order.push(node);
        for dependent in graph.neighbors_directed(node, Outgoing) {
            waiting[dependent.index()] -= 1;
            if waiting[dependent.index()] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }

    (order.len() == graph.node_count()).then_some(order)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stage running `test.job` that reads and needs the given stages.
    pub(crate) fn stage(id: &str, reads: &[&str], needs: &[&str]) -> StageNode {
        StageNode {
            id: id.to_owned(),
            job: "test.job".to_owned(),
            fan_out: false,
            reads: reads.iter().map(|&read| read.to_owned()).collect(),
            needs: needs.iter().map(|&need| need.to_owned()).collect(),
        }
    }

    fn plan(stages: Vec<StageNode>) -> Plan {
        Plan::build(stages).expect("the test graph is acyclic")
    }

    #[test]
    fn a_chain_orders_and_levels_its_stages_one_after_another() {
        let plan = plan(vec![
            stage("c", &["b"], &[]),
            stage("b", &[], &["a"]),
            stage("a", &[], &[]),
        ]);

        assert_eq!(plan.order(), ["a", "b", "c"]);
        assert_eq!(plan.levels(), [["a"], ["b"], ["c"]]);
    }

    #[test]
    fn a_diamond_puts_both_branches_on_one_level_in_input_order() {
        let plan = plan(vec![
            stage("join", &["right", "left"], &[]),
            stage("right", &["root"], &[]),
            stage("left", &["root"], &[]),
            stage("root", &[], &[]),
        ]);

        assert_eq!(
            plan.levels(),
            vec![vec!["root"], vec!["right", "left"], vec!["join"]]
        );
        assert_eq!(plan.order(), ["root", "right", "left", "join"]);
    }

    #[test]
    fn a_stage_level_is_one_more_than_its_deepest_dependency() {
        let plan = plan(vec![
            stage("a", &[], &[]),
            stage("b", &["a"], &[]),
            stage("c", &["b"], &[]),
            stage("d", &["a", "c"], &[]),
            stage("e", &[], &[]),
        ]);

        assert_eq!(
            plan.levels(),
            vec![vec!["a", "e"], vec!["b"], vec!["c"], vec!["d"]]
        );
    }

    #[test]
    fn ties_in_the_order_are_broken_by_input_order() {
        let plan = plan(vec![
            stage("z", &[], &[]),
            stage("y", &["x"], &[]),
            stage("x", &[], &[]),
            stage("w", &[], &[]),
        ]);

        assert_eq!(plan.order(), ["z", "x", "y", "w"]);
    }

    #[test]
    fn reads_make_data_edges_needs_make_order_edges_and_data_wins_when_both() {
        let plan = plan(vec![
            stage("a", &[], &[]),
            stage("b", &[], &[]),
            stage("c", &[], &[]),
            stage("d", &["c", "a", "a"], &["b", "a", "b"]),
        ]);

        assert_eq!(
            plan.dependencies("d"),
            [
                ("a", EdgeKind::Data),
                ("b", EdgeKind::Order),
                ("c", EdgeKind::Data),
            ]
        );
        assert_eq!(plan.graph().edge_count(), 3);
    }

    #[test]
    fn unknown_ids_are_ignored() {
        let plan = plan(vec![
            stage("a", &["ghost"], &["phantom"]),
            stage("b", &["a", "ghost"], &[]),
        ]);

        assert_eq!(plan.dependencies("a"), []);
        assert_eq!(plan.dependencies("b"), [("a", EdgeKind::Data)]);
        assert_eq!(plan.dependencies("ghost"), []);
        assert_eq!(plan.ancestors("ghost"), Vec::<&str>::new());
        assert!(!plan.contains("ghost"));
    }

    #[test]
    fn a_repeated_id_keeps_its_first_definition() {
        let plan = plan(vec![
            stage("a", &[], &[]),
            stage("b", &["a"], &[]),
            stage("a", &["b"], &[]),
        ]);

        assert_eq!(plan.len(), 2);
        assert_eq!(plan.order(), ["a", "b"]);
    }

    #[test]
    fn ancestors_and_descendants_follow_edges_transitively_in_input_order() {
        let plan = plan(vec![
            stage("report", &["count", "sum"], &[]),
            stage("sum", &["list"], &[]),
            stage("count", &["list"], &[]),
            stage("list", &[], &["setup"]),
            stage("setup", &[], &[]),
            stage("alone", &[], &[]),
        ]);

        assert_eq!(plan.ancestors("report"), ["sum", "count", "list", "setup"]);
        assert_eq!(plan.ancestors("count"), ["list", "setup"]);
        assert_eq!(plan.ancestors("setup"), Vec::<&str>::new());
        assert_eq!(plan.descendants("list"), ["report", "sum", "count"]);
        assert_eq!(plan.descendants("alone"), Vec::<&str>::new());
        assert_eq!(plan.dependents("list"), ["sum", "count"]);
    }

    #[test]
    fn an_empty_plan_has_no_order_and_no_levels() {
        let plan = plan(Vec::new());

        assert!(plan.is_empty());
        assert_eq!(plan.order(), Vec::<&str>::new());
        assert_eq!(plan.levels(), Vec::<Vec<&str>>::new());
    }

    #[test]
    fn a_ten_thousand_stage_chain_builds_and_orders() {
        let ids: Vec<String> = (0..10_000).map(|n| format!("s{n}")).collect();
        let stages = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let reads: Vec<&str> = ids.get(n + 1).map(String::as_str).into_iter().collect();
                stage(id, &reads, &[])
            })
            .collect();

        let plan = plan(stages);

        assert_eq!(plan.order().first(), Some(&"s9999"));
        assert_eq!(plan.levels().len(), 10_000);
        assert_eq!(plan.ancestors("s0").len(), 9_999);
    }

    #[test]
    fn a_ten_thousand_wide_graph_builds_and_orders() {
        let ids: Vec<String> = (0..10_000).map(|n| format!("s{n}")).collect();
        let mut stages: Vec<StageNode> = ids.iter().map(|id| stage(id, &["root"], &[])).collect();
        let all: Vec<&str> = ids.iter().map(String::as_str).collect();
        stages.push(stage("root", &[], &[]));
        stages.push(stage("sink", &all, &[]));

        let plan = plan(stages);

        assert_eq!(plan.order().first(), Some(&"root"));
        assert_eq!(
            plan.levels().iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 10_000, 1]
        );
        assert_eq!(plan.dependencies("sink").len(), 10_000);
    }
}
