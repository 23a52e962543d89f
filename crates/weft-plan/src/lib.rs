//! The plan of a workflow: its stages as a directed acyclic graph.
//!
//! The planner does not know the workflow file format. It sees each stage as a [`StageNode`]:
//! an id, the job it runs, whether it fans out, and the ids of the stages it reads through
//! expressions or names in `needs`. [`Plan::build`] turns those into a
//! [`petgraph`] graph and refuses a graph with cycles, reporting every one of them at once as
//! a [`Cycle`].
//!
//! # Direction
//!
//! Every edge points from a dependency to the stage that depends on it: when `count` reads
//! `list`, the graph holds `list -> count`. Graph drawings and cycle paths follow the same
//! direction, so an arrow always reads "is needed by".
//!
//! # Determinism
//!
//! Every answer that lists stages lists them in the order the stages were given to
//! [`Plan::build`], or in a topological order whose ties are broken by that order, so the
//! same input always gives the same output, drawings included.

mod cycle;
mod plan;
mod render;

pub use cycle::Cycle;
pub use plan::Plan;
pub use render::StageState;

/// One stage as the planner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageNode {
    /// The stage id, unique within the workflow.
    pub id: String,
    /// `plugin.job`, shown in graph labels.
    pub job: String,
    /// Fan-out stage (`for_each` or `matrix`): drawn differently.
    pub fan_out: bool,
    /// Stages this one reads through expressions (data edges), any order, may repeat.
    pub reads: Vec<String>,
    /// Stages named in `needs` (order-only edges unless also read).
    pub needs: Vec<String>,
}

/// Why one stage waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// The dependent stage reads the dependency's output through an expression.
    ///
    /// A stage that both reads and needs another gets a single data edge.
    Data,
    /// The dependent stage names the dependency in `needs` without reading its output.
    Order,
}

/// A stage as it is kept in a [`Plan`]'s graph, without its dependency lists, which have
/// become edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    /// The stage id.
    pub id: String,
    /// `plugin.job`, shown in graph labels.
    pub job: String,
    /// Whether the stage fans out (`for_each` or `matrix`).
    pub fan_out: bool,
}
