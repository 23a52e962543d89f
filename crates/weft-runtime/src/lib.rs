//! Runs a weft workflow: one shared worker pool, a scheduler on tokio, fan-out and fan-in,
//! retries, timeouts and cancellation through the graph.
//!
//! ```no_run
//! # async fn example(prepared: weft_runtime::Prepared) {
//! use weft_runtime::{Engine, PoolConfig, RunControl, RunRequest};
//!
//! let engine = Engine::new(PoolConfig::default());
//! let report = engine
//!     .run(&prepared, RunRequest {
//!         run_id: "r1".to_owned(),
//!         inputs: Default::default(),
//!         control: RunControl::new(),
//!         events: None,
//!         grace: None,
//!     })
//!     .await;
//! println!("{:?}: {}", report.status, serde_json::Value::Object(report.outputs));
//! # }
//! ```

pub mod eval;
pub mod events;
pub mod pool;
mod run;
mod stage;
pub mod state;

pub use events::{Event, EventKind, EventSink, EventsFile, WorkerSpan};
pub use pool::{Lane, Pool, PoolConfig};
pub use run::{
    CancelReason, Engine, Prepared, RunControl, RunReport, RunRequest, RunStatus, stage_nodes,
};
pub use state::{ErrorInfo, JobStatus, StageRecord, StageStatus, StatusFlags};
