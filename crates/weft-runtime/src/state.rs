//! What a run knows about its stages and jobs as it goes, and what expressions read of them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use weft_host::JsonText;

/// The state of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not started: waiting for its dependencies.
    Pending,
    /// Its jobs are running.
    Running,
    /// Every job succeeded, or the failures stayed within `tolerate`.
    Succeeded,
    /// More jobs failed than `tolerate` allows, or its items could not be computed.
    Failed,
    /// Its `if` did not hold, or (with `on_error: continue`) a stage it depends on failed.
    Skipped,
    /// The run was cancelled before or while it ran.
    Cancelled,
}

impl StageStatus {
    /// Whether the stage will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// The name expressions and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for StageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The final state of one job (one item of a fan-out, or a stage's single job).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Its last attempt returned an output.
    Succeeded,
    /// Its last attempt returned an error (or its input could not be computed).
    Failed,
    /// Its last attempt ran past the stage's `timeout`.
    TimedOut,
    /// It was cancelled, or never started because the stage was cancelled.
    Cancelled,
    /// It was cancelled and did not return within the grace period; its thread was left.
    Abandoned,
}

impl JobStatus {
    /// The name expressions and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }

    /// Whether `tolerate` counts the job as a failure: failed and timed-out jobs count,
    /// cancelled (and abandoned) ones do not.
    pub fn counts_as_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed, as reports and expressions show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorInfo {
    /// What went wrong.
    pub message: String,
    /// Whether another attempt may have succeeded.
    pub retryable: bool,
    /// Structured details from the plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ErrorInfo {
    /// An error that retrying cannot fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            details: None,
        }
    }
}

/// A job's output as the plugin wrote it: JSON text, checked but not parsed. A fan-out's
/// outputs are mostly passed on whole to a fan-in, so they are parsed only when an
/// expression reads inside them.
pub type Output = JsonText;

/// Parses an output checked when it was received; `None` is `null`.
pub fn parse(output: Option<&JsonText>) -> Value {
    // The text was checked to be JSON when the job returned, so this parse succeeds.
    output.map_or(Value::Null, |text| {
        serde_json::from_str(text.get()).unwrap_or(Value::Null)
    })
}

/// A fan-out's items, in order.
#[derive(Clone, Debug)]
pub enum Items {
    /// Values the engine computed: a literal list, a matrix, an expression's result.
    Values(Vec<Value>),
    /// The elements of a JSON array a job wrote, kept as its text with where each element
    /// lies, `(start, end)` in bytes: a fan-out over another stage's output builds no value
    /// per item, and an item passed on whole is copied as text.
    Text {
        /// The array's text.
        text: Box<str>,
        /// Where each element lies in it.
        spans: Vec<(u32, u32)>,
    },
}

impl Default for Items {
    fn default() -> Self {
        Self::Values(Vec::new())
    }
}

/// One item of a fan-out.
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    /// A computed value.
    Value(&'a Value),
    /// JSON text, checked when it was received.
    Text(&'a str),
}

impl Item<'_> {
    /// The item as a JSON value.
    pub fn to_json(self) -> Value {
        match self {
            Item::Value(value) => value.clone(),
            // The text was checked to be JSON when the job that wrote it returned.
            Item::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
}

impl Items {
    /// The elements of `text` when it is a JSON array; `None` when it is anything else.
    pub fn from_text(text: &JsonText) -> Option<Items> {
        let source = text.get();
        let elements: Vec<&RawValue> = serde_json::from_str(source).ok()?;
        let base = source.as_ptr().addr();
        let spans = elements
            .iter()
            .map(|element| {
                let start = element.get().as_ptr().addr() - base;
                let end = start + element.get().len();
                // Outputs are at most 64 MiB, so every offset fits.
                (
                    u32::try_from(start).unwrap_or(u32::MAX),
                    u32::try_from(end).unwrap_or(u32::MAX),
                )
            })
            .collect();
        Some(Items::Text {
            text: source.into(),
            spans,
        })
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        match self {
            Items::Values(values) => values.len(),
            Items::Text { spans, .. } => spans.len(),
        }
    }

    /// Every item as a JSON value.
    pub fn to_values(&self) -> Vec<Value> {
        (0..self.len())
            .filter_map(|index| self.get(index))
            .map(Item::to_json)
            .collect()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Option<Item<'_>> {
        match self {
            Items::Values(values) => values.get(index).map(Item::Value),
            Items::Text { text, spans } => {
                let &(start, end) = spans.get(index)?;
                text.get(start as usize..end as usize).map(Item::Text)
            }
        }
    }
}

/// Everything known about a stage once it is final (or while it runs, partly).
#[derive(Clone, Debug)]
pub struct StageRecord {
    /// The stage's state.
    pub status: StageStatus,
    /// Whether the stage fans out.
    pub fan_out: bool,
    /// The fan-out's items, in order (none for a single job).
    pub items: Arc<Items>,
    /// One output per job, in item order; `None` (`null` to expressions) for a job that did
    /// not succeed.
    pub outputs: Vec<Option<Output>>,
    /// One final state per job, in item order.
    pub jobs: Vec<JobStatus>,
    /// The errors of the jobs that failed, by item index.
    pub errors: BTreeMap<usize, ErrorInfo>,
    /// Attempts made, by all jobs together.
    pub attempts: u64,
    /// Why the stage itself failed, when it failed before its jobs ran (a `for_each` that is
    /// not a list, an `if` that does not evaluate).
    pub error: Option<ErrorInfo>,
    /// Wall time from start to end.
    pub elapsed: Duration,
}

impl StageRecord {
    /// A stage that has not started.
    pub fn pending(fan_out: bool) -> Self {
        Self {
            status: StageStatus::Pending,
            fan_out,
            items: Arc::new(Items::default()),
            outputs: Vec::new(),
            jobs: Vec::new(),
            errors: BTreeMap::new(),
            attempts: 0,
            error: None,
            elapsed: Duration::ZERO,
        }
    }

    /// `stages.ID.output` as text: the single job's output, `None` unless the stage
    /// succeeded.
    pub fn output_text(&self) -> Option<&JsonText> {
        if self.status == StageStatus::Succeeded {
            self.outputs.first()?.as_ref()
        } else {
            None
        }
    }

    /// `stages.ID.output`: the single job's output, `null` unless the stage succeeded.
    pub fn output(&self) -> Value {
        parse(self.output_text())
    }

    /// The output of job `index`, parsed; `null` when it has none.
    pub fn output_of(&self, index: usize) -> Value {
        parse(self.outputs.get(index).and_then(Option::as_ref))
    }

    /// `stages.ID.results`: per job `{index, item, status, output, error}`.
    pub fn results(&self) -> Vec<Value> {
        self.jobs
            .iter()
            .enumerate()
            .map(|(index, status)| {
                json!({
                    "index": index,
                    "item": self.items.get(index).map_or(Value::Null, |item| item.to_json()),
                    "status": status.as_str(),
                    "output": self.output_of(index),
                    "error": self.errors.get(&index),
                })
            })
            .collect()
    }

    /// How many jobs ended in each state: (succeeded, failed, cancelled, abandoned), where
    /// failed counts timed-out jobs too.
    pub fn counts(&self) -> JobCounts {
        let mut counts = JobCounts::default();
        for status in &self.jobs {
            match status {
                JobStatus::Succeeded => counts.succeeded += 1,
                JobStatus::Failed | JobStatus::TimedOut => counts.failed += 1,
                JobStatus::Cancelled => counts.cancelled += 1,
                JobStatus::Abandoned => counts.abandoned += 1,
            }
        }
        counts
    }
}

/// Jobs of a stage by final state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Jobs that succeeded.
    pub succeeded: usize,
    /// Jobs that failed or timed out.
    pub failed: usize,
    /// Jobs that were cancelled or never started.
    pub cancelled: usize,
    /// Jobs abandoned after the grace period.
    pub abandoned: usize,
}

/// What `if` can ask about the run through `success()`, `failure()` and `cancelled()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusFlags {
    /// Every stage this one depends on, directly or not, succeeded, and the run is not
    /// cancelled.
    pub success: bool,
    /// One of the stages this one depends on, directly or not, failed.
    pub failure: bool,
    /// The run is cancelled.
    pub cancelled: bool,
}
