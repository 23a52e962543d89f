//! `weft graph`: the DAG of a valid workflow, for Graphviz or Mermaid, optionally coloured by
//! the state each stage ended in during a run, read from that run's events file.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use serde_json::Value;
use weft_plan::{Plan, StageState};
use weft_spec::diagnostic::render_all;

use crate::cli::GraphFormat;
use crate::workflow::Plugins;
use crate::{exit, output, workflow};

/// Prints the graph of `file`, coloured by the run recorded in `events` if given, or its
/// errors. Returns the exit code.
pub fn run(file: &Path, format: GraphFormat, events: Option<&Path>) -> io::Result<u8> {
    let loaded = workflow::load(file, Plugins::Skip);
    let (Some(plan), Some(document)) = (&loaded.plan, &loaded.document) else {
        output::stderr(&render_all(&loaded.diagnostics, loaded.source.as_deref()));
        return Ok(exit::INVALID);
    };

    let states = match events.map(|events| read_states(events, plan)).transpose() {
        Ok(states) => states,
        Err(error) => {
            output::stderr(&format!("error: {error}\n  = hint: {}\n", error.hint()));
            return Ok(exit::INVALID);
        }
    };

    let title = document.workflow.name.as_deref().unwrap_or("workflow");
    let text = match (format, &states) {
        (GraphFormat::Dot, None) => plan.to_dot(title),
        (GraphFormat::Mermaid, None) => plan.to_mermaid(title),
        (GraphFormat::Dot, Some(states)) => plan.to_dot_with(title, states),
        (GraphFormat::Mermaid, Some(states)) => plan.to_mermaid_with(title, states),
    };
    output::stdout(&text)?;
    Ok(exit::SUCCESS)
}

/// Why an events file cannot colour the graph.
#[derive(Debug, thiserror::Error)]
enum EventsError {
    /// The file cannot be read.
    #[error("cannot read the events file `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A line is not an event of version 1.
    #[error("`{path}` line {line} is not an event: {reason}")]
    Malformed {
        path: String,
        line: usize,
        reason: String,
    },
    /// The file holds no event at all.
    #[error("the events file `{path}` holds no event")]
    Empty { path: String },
    /// The file names a stage the workflow does not have.
    #[error("the events file `{path}` names stage `{stage}`, which the workflow does not have")]
    UnknownStage { path: String, stage: String },
}

impl EventsError {
    /// What the user can do about it.
    fn hint(&self) -> &'static str {
        match self {
            Self::Read { .. } | Self::Empty { .. } => {
                "write one with `weft run FILE --events EVENTS`, then pass EVENTS to `--run`"
            }
            Self::Malformed { .. } => {
                "`--run` reads the file `weft run --events` writes: one JSON object per line, \
                 each with `\"v\": 1`"
            }
            Self::UnknownStage { .. } => {
                "was the events file written by a run of another workflow, or of an older \
                 version of this one?"
            }
        }
    }
}

/// The state each stage of `plan` ended in, from an events file: the status of its
/// `stage_finished` event, running when it started and has no such event, and nothing (not
/// run) when neither is there.
///
/// A last line without its line feed is ignored when it does not parse: the run that writes
/// the file may be in the middle of it.
fn read_states(path: &Path, plan: &Plan) -> Result<HashMap<String, StageState>, EventsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EventsError::Read {
        path: shown.clone(),
        source,
    })?;

    let mut states = HashMap::new();
    let mut events = 0;
    let lines: Vec<&str> = text.lines().collect();
    let complete = text.ends_with('\n');
    for (at, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = match event(line) {
            Ok(event) => event,
            Err(_) if at + 1 == lines.len() && !complete => break,
            Err(reason) => {
                return Err(EventsError::Malformed {
                    path: shown,
                    line: at + 1,
                    reason,
                });
            }
        };
        events += 1;

        let Some((stage, state)) = event else {
            continue;
        };
        if !plan.contains(&stage) {
            return Err(EventsError::UnknownStage { path: shown, stage });
        }
        match state {
            Some(state) => states.insert(stage, state),
            None => states.insert(stage, StageState::Running),
        };
    }

    if events == 0 {
        return Err(EventsError::Empty { path: shown });
    }
    Ok(states)
}

/// What one line of an events file says about a stage: for `stage_started`, the stage and
/// no state; for `stage_finished`, the stage and its state; nothing for other kinds.
type StageEvent = Option<(String, Option<StageState>)>;

/// Reads one line of an events file.
fn event(line: &str) -> Result<StageEvent, String> {
    let value: Value = serde_json::from_str(line).map_err(|error| error.to_string())?;
    let version = value.get("v").and_then(Value::as_u64);
    if version != Some(1) {
        return Err(match value.get("v") {
            Some(v) => format!("its version is `{v}`; this weft reads version 1"),
            None => "it has no version (`v`)".to_owned(),
        });
    }
    let Some(kind) = value.get("kind").and_then(Value::as_str) else {
        return Err("it has no `kind`".to_owned());
    };
    if kind != "stage_started" && kind != "stage_finished" {
        return Ok(None);
    }
    let Some(stage) = value.get("stage").and_then(Value::as_str) else {
        return Err(format!("a `{kind}` event without a `stage`"));
    };
    if kind == "stage_started" {
        return Ok(Some((stage.to_owned(), None)));
    }

    let status = value.get("status").and_then(Value::as_str).unwrap_or("");
    let state = match status {
        "succeeded" => StageState::Succeeded,
        "failed" => StageState::Failed,
        "cancelled" => StageState::Cancelled,
        "skipped" => StageState::Skipped,
        other => {
            return Err(format!(
                "stage `{stage}` finished with an unknown status `{other}`"
            ));
        }
    };
    Ok(Some((stage.to_owned(), Some(state))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_another_version_or_without_a_kind_is_refused() {
        assert_eq!(
            event(r#"{"v": 2, "kind": "run_started"}"#).unwrap_err(),
            "its version is `2`; this weft reads version 1"
        );
        assert_eq!(event(r#"{"v": 1}"#).unwrap_err(), "it has no `kind`");
        assert!(event("not json").is_err());
    }

    #[test]
    fn stage_events_give_the_stage_and_its_state() {
        let started = event(r#"{"v": 1, "kind": "stage_started", "stage": "a"}"#);
        let finished =
            event(r#"{"v": 1, "kind": "stage_finished", "stage": "a", "status": "skipped"}"#);
        let job = event(r#"{"v": 1, "kind": "job_finished", "stage": "a", "status": "failed"}"#);

        assert_eq!(started.unwrap(), Some(("a".to_owned(), None)));
        assert_eq!(
            finished.unwrap(),
            Some(("a".to_owned(), Some(StageState::Skipped)))
        );
        assert_eq!(job.unwrap(), None);
    }
}
