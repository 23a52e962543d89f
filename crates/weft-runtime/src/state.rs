//! What a run knows about its stages and jobs as it goes, and what expressions read of them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
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

/// Where each element of a JSON array lies in `text`, `(start, end)` in bytes; `None` when
/// the text is not an array.
///
/// `text` must be JSON already checked (as a [`JsonText`] is), so this only follows nesting and
/// strings to find the commas between elements: one pass over the bytes, with no value built.
fn array_spans(text: &str) -> Option<Vec<(u32, u32)>> {
    let bytes = text.as_bytes();
    let is_space = |byte: u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    let mut at = bytes.iter().position(|&byte| !is_space(byte))?;
    if bytes[at] != b'[' {
        return None;
    }
    at += 1;
    // Outputs are at most 64 MiB, so every offset fits.
    let offset = |at: usize| u32::try_from(at).unwrap_or(u32::MAX);
    let mut spans = Vec::new();
    loop {
        while bytes.get(at).is_some_and(|&byte| is_space(byte)) {
            at += 1;
        }
        if bytes.get(at).is_none_or(|&byte| byte == b']') {
            return Some(spans);
        }
        let first = at;
        let mut depth = 0_usize;
        while let Some(&byte) = bytes.get(at) {
            if !STRUCTURAL[usize::from(byte)] {
                at += 1;
                continue;
            }
            match byte {
                b'"' => at = string_end(bytes, at + 1),
                b'[' | b'{' => {
                    depth += 1;
                    at += 1;
                }
                b',' | b']' | b'}' if depth == 0 => break,
                b']' | b'}' => {
                    depth -= 1;
                    at += 1;
                }
                _ => at += 1,
            }
        }
        let mut last = at;
        while last > first && is_space(bytes[last - 1]) {
            last -= 1;
        }
        spans.push((offset(first), offset(last)));
        if bytes.get(at) != Some(&b',') {
            return Some(spans);
        }
        at += 1;
    }
}

/// The bytes that start or end a string, a list or a mapping, or end an element.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    let special = *b"\"[]{},";
    let mut at = 0;
    while at < special.len() {
        table[special[at] as usize] = true;
        at += 1;
    }
    table
};

/// The offset just past the quote that closes the string whose text starts at `at`.
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => return at + 1,
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    at
}

impl Items {
    /// The elements of `text` when it is a JSON array; `None` when it is anything else.
    pub fn from_text(text: &JsonText) -> Option<Items> {
        let source = text.get();
        Some(Items::Text {
            spans: array_spans(source)?,
            text: source.into(),
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
    /// The errors of the jobs that ended with one, by item index: failed, timed out or
    /// abandoned jobs, and cancelled jobs with the error they stopped with (or that of their
    /// last attempt, for a job cancelled while waiting to retry). A job that was never
    /// called has none.
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

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    fn elements(text: &str) -> Option<Vec<String>> {
        let items = Items::from_text(&JsonText::new(text.to_owned()).unwrap())?;
        Some(
            (0..items.len())
                .map(|index| match items.get(index) {
                    Some(Item::Text(text)) => text.to_owned(),
                    other => panic!("item {index} is {other:?}"),
                })
                .collect(),
        )
    }

    #[test]
    fn array_elements_are_found_through_nesting_strings_and_escapes() {
        let text = r#" [ 1 , {"a": [2, "x,y]"]}, "z\"],\\", [], [[3]], -4.5e1, null ] "#;

        assert_eq!(
            elements(text).unwrap(),
            [
                "1",
                r#"{"a": [2, "x,y]"]}"#,
                r#""z\"],\\""#,
                "[]",
                "[[3]]",
                "-4.5e1",
                "null"
            ]
        );
    }

    #[test]
    fn an_empty_array_has_no_elements_and_other_values_are_not_arrays() {
        assert_eq!(elements("[]").unwrap(), Vec::<String>::new());
        assert_eq!(elements("[ \n ]").unwrap(), Vec::<String>::new());
        assert_eq!(
            elements(r#"["é", "\u00e9"]"#).unwrap(),
            [r#""é""#, r#""\u00e9""#]
        );
        assert_eq!(elements(r#"{"a": [1]}"#), None);
        assert_eq!(elements(r#""[1, 2]""#), None);
        assert_eq!(elements("3"), None);
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |float| float.is_finite())
                .prop_map(Value::from),
            "[ -~\\\\\"é\n]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z,\\]\"]{0,3}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn array_elements_match_serde_json(
            values in proptest::collection::vec(json(), 0..6),
            pretty in proptest::bool::ANY,
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&values).unwrap()
            } else {
                serde_json::to_string(&values).unwrap()
            };
            let expected: Vec<&RawValue> = serde_json::from_str(&text).unwrap();
            let expected: Vec<String> = expected.iter().map(|raw| raw.get().to_owned()).collect();
            proptest::prop_assert_eq!(elements(&text).unwrap(), expected);
        }
    }
}
