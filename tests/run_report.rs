//! What `weft run` reports besides its outputs: the summary on stderr, the trace file, and the
//! graph coloured by a run's events; and that nothing but the summary reaches a stderr that is
//! not a terminal.

mod common;
#[path = "common/plugins.rs"]
#[expect(dead_code, reason = "these tests use the shipped plugins only")]
mod plugins;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::{Output, weft};

/// A run that fails: two items of a fan-out fail after a retry, a job times out, and a stage
/// is skipped.
const FAILED: &str = "tests/fixtures/report/failed.yaml";

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("run_report-{test}"));
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).expect("the scratch folder should be created");
    folder
}

/// `weft run ARGS...`, with the shipped plugins built.
fn run(args: &[&str]) -> Output {
    plugins::shipped();
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    weft(&all)
}

/// Each time the summary writes (`850µs`, `12.3ms`, `4.56s`, `2m05s`) as `[time]`.
fn redact_times(text: &str) -> String {
    let is_time = |word: &str| {
        word.starts_with(|c: char| c.is_ascii_digit())
            && (word.ends_with('s') || word.ends_with('m'))
            && word
                .chars()
                .all(|c| c.is_ascii_digit() || ".µmsh".contains(c))
    };
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| if is_time(word) { "[time]" } else { word })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The summary at the end of stderr: from the table's header on, after the log lines.
fn summary(stderr: &str) -> &str {
    let start = stderr
        .match_indices("stage ")
        .map(|(start, _)| start)
        .find(|&start| {
            let line = stderr[start..].lines().next().unwrap_or_default();
            (start == 0 || stderr[..start].ends_with('\n')) && line.contains(" status ")
        })
        .unwrap_or_else(|| panic!("no summary table in:\n{stderr}"));
    &stderr[start..]
}

#[test]
fn the_summary_of_a_failed_run_lists_each_stage_and_each_failure_with_its_attempt() {
    let output = run(&[FAILED]);

    assert_eq!(output.code, 1, "{output:?}");
    insta::assert_snapshot!("failed_run_summary", redact_times(summary(&output.stderr)));
}

#[test]
fn a_quiet_run_prints_no_summary() {
    let output = run(&[FAILED, "--quiet"]);

    assert_eq!(output.code, 1, "{output:?}");
    assert!(!output.stderr.contains("attempts"), "{}", output.stderr);
    assert!(!output.stderr.contains("run failed"), "{}", output.stderr);
}

#[test]
fn no_progress_is_drawn_when_stderr_is_not_a_terminal() {
    let output = run(&["workflows/wordcount.yaml"]);

    assert_eq!(output.code, 0, "{output:?}");
    assert!(!output.stderr.contains("waiting"), "{}", output.stderr);
    assert!(!output.stderr.contains('\r'), "{:?}", output.stderr);
    assert!(!output.stderr.contains("\u{1b}[2K"), "{:?}", output.stderr);
}

/// The events of a trace, with the names of its threads by id.
struct Trace {
    spans: Vec<Value>,
    threads: HashMap<u64, String>,
}

impl Trace {
    fn read(path: &PathBuf) -> Self {
        let text = fs::read_to_string(path).expect("the trace should be written");
        let trace: Value = serde_json::from_str(&text).expect("the trace should be JSON");
        let events = trace["traceEvents"]
            .as_array()
            .expect("the trace should have a `traceEvents` list")
            .clone();
        let threads = events
            .iter()
            .filter(|event| event["ph"] == "M" && event["name"] == "thread_name")
            .map(|event| {
                let tid = event["tid"].as_u64().expect("a thread has a numeric id");
                let name = event["args"]["name"].as_str().expect("a thread has a name");
                (tid, name.to_owned())
            })
            .collect();
        let spans = events
            .into_iter()
            .filter(|event| event["ph"] == "X")
            .collect();
        Self { spans, threads }
    }

    /// The spans of category `category`.
    fn of(&self, category: &str) -> Vec<&Value> {
        self.spans
            .iter()
            .filter(|span| span["cat"] == category)
            .collect()
    }
}

#[test]
fn the_trace_has_a_span_for_the_run_each_stage_and_each_attempt_on_its_worker() {
    let folder = scratch("trace");
    let path = folder.join("trace.json");

    let output = run(&[FAILED, "--quiet", "--trace", path.to_str().unwrap()]);

    assert_eq!(output.code, 1, "{output:?}");
    let trace = Trace::read(&path);
    for span in &trace.spans {
        assert_eq!(span["pid"], 1, "{span}");
        assert!(span["ts"].as_f64().unwrap() >= 0.0, "{span}");
        assert!(span["dur"].as_f64().unwrap() >= 0.0, "{span}");
        let tid = span["tid"].as_u64().unwrap();
        assert!(trace.threads.contains_key(&tid), "unnamed thread {tid}");
    }

    let runs = trace.of("run");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["name"], "report");
    assert_eq!(runs[0]["tid"], 0);
    assert_eq!(runs[0]["args"]["status"], "failed");
    assert_eq!(trace.threads[&0], "run");

    let stages: BTreeSet<(String, String)> = trace
        .of("stage")
        .iter()
        .map(|span| {
            let tid = span["tid"].as_u64().unwrap();
            (
                span["name"].as_str().unwrap().to_owned(),
                trace.threads[&tid].clone(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ["numbers", "check", "publish", "slow"]
        .into_iter()
        .map(|stage| (stage.to_owned(), format!("stage {stage}")))
        .collect();
    assert_eq!(stages, expected);

    let mut attempts: Vec<(String, u64, String)> = trace
        .of("job")
        .iter()
        .map(|span| {
            let name = span["name"].as_str().unwrap().to_owned();
            let attempt = span["args"]["attempt"].as_u64().unwrap();
            let tid = span["tid"].as_u64().unwrap();
            (name, attempt, trace.threads[&tid].clone())
        })
        .collect();
    attempts.sort();
    let placed: Vec<(&str, u64)> = attempts
        .iter()
        .map(|(name, attempt, thread)| {
            assert!(
                thread.starts_with("worker "),
                "{name} attempt {attempt} is on {thread}"
            );
            (name.as_str(), *attempt)
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("check[0]", 1),
            ("check[1]", 1),
            ("check[1]", 2),
            ("check[2]", 1),
            ("check[3]", 1),
            ("check[3]", 2),
            ("numbers", 1),
            // It timed out, stopped within the grace period, and so has its worker span.
            ("slow", 1),
        ]
    );
}

/// Runs the failed fixture with an events file and returns the file's path.
fn events_of_the_failed_run(test: &str) -> PathBuf {
    let path = scratch(test).join("events.jsonl");
    let output = run(&[FAILED, "--quiet", "--events", path.to_str().unwrap()]);
    assert_eq!(output.code, 1, "{output:?}");
    path
}

#[test]
fn graph_with_a_run_fills_each_stage_with_the_colour_of_its_state_in_dot() {
    let events = events_of_the_failed_run("graph-dot");

    let output = weft(&["graph", FAILED, "--run", events.to_str().unwrap()]);

    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stderr.is_empty(), "{}", output.stderr);
    insta::assert_snapshot!("failed_run_dot", output.stdout);
}

#[test]
fn graph_with_a_run_puts_each_stage_in_the_class_of_its_state_in_mermaid() {
    let events = events_of_the_failed_run("graph-mermaid");

    let output = weft(&[
        "graph",
        FAILED,
        "--format",
        "mermaid",
        "--run",
        events.to_str().unwrap(),
    ]);

    assert_eq!(output.code, 0, "{output:?}");
    insta::assert_snapshot!("failed_run_mermaid", output.stdout);
}

#[test]
fn graph_with_a_missing_events_file_exits_2_and_says_how_to_write_one() {
    let output = weft(&[
        "graph",
        FAILED,
        "--run",
        "tests/fixtures/report/nowhere.jsonl",
    ]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    assert!(
        output.stderr.starts_with(
            "error: cannot read the events file `tests/fixtures/report/nowhere.jsonl`: "
        ),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("hint: write one with `weft run FILE --events EVENTS`")
    );
}

#[test]
fn graph_with_a_malformed_events_file_exits_2_and_names_the_line() {
    let path = scratch("graph-malformed").join("events.jsonl");
    fs::write(
        &path,
        "{\"v\":1,\"kind\":\"run_started\",\"run\":\"r\"}\nnot an event\n",
    )
    .unwrap();

    let output = weft(&["graph", FAILED, "--run", path.to_str().unwrap()]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    assert!(
        output.stderr.starts_with(&format!(
            "error: `{}` line 2 is not an event: ",
            path.display()
        )),
        "{}",
        output.stderr
    );
}

#[test]
fn graph_with_the_events_of_another_workflow_exits_2() {
    let events = events_of_the_failed_run("graph-other");

    let output = weft(&[
        "graph",
        "workflows/wordcount.yaml",
        "--run",
        events.to_str().unwrap(),
    ]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output
            .stderr
            .contains("names stage `numbers`, which the workflow does not have"),
        "{}",
        output.stderr
    );
}
