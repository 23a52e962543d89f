//! `--events FILE`: one JSON object per line for every state change, each with `v: 1`, `ts`,
//! `kind` and `run`; job events carry `stage`, `attempt`, and `index` in a fan-out.

use serde_json::Value;

use crate::support::{Events, Scenario};

/// Every kind of event the format knows.
const KINDS: &[&str] = &[
    "run_started",
    "stage_started",
    "job_started",
    "job_finished",
    "job_retrying",
    "stage_finished",
    "run_finished",
    "log",
];

/// Whether `ts` is RFC 3339 in UTC with microseconds: `2024-01-02T03:04:05.123456Z`.
fn is_rfc3339_micros(ts: &str) -> bool {
    let bytes = ts.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    bytes.len() == 27
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && bytes[19] == b'.'
        && digits(20..26)
        && bytes[26] == b'Z'
}

#[track_caller]
fn assert_well_formed(events: &Events, fan_out: &[&str]) {
    let all = events.all();
    assert!(!all.is_empty(), "the events file should not be empty");
    assert_eq!(all[0]["kind"], "run_started");
    assert_eq!(all[all.len() - 1]["kind"], "run_finished");
    let run = &all[0]["run"];
    assert!(run.as_str().is_some_and(|run| !run.is_empty()), "{run}");

    for event in all {
        assert_eq!(event["v"], 1, "{event}");
        assert_eq!(&event["run"], run, "one run id throughout: {event}");
        let ts = event["ts"].as_str().unwrap_or_default();
        assert!(
            is_rfc3339_micros(ts),
            "`ts` is not RFC 3339 with µs: {event}"
        );
        let kind = event["kind"].as_str().unwrap_or_default();
        assert!(KINDS.contains(&kind), "unknown kind: {event}");

        if kind.starts_with("job_") {
            let stage = event["stage"]
                .as_str()
                .expect("job events name their stage");
            assert!(
                event["attempt"]
                    .as_u64()
                    .is_some_and(|attempt| attempt >= 1),
                "{event}"
            );
            assert_eq!(
                event["index"].is_u64(),
                fan_out.contains(&stage),
                "`index` is set on the job events of a fan-out, and only there: {event}"
            );
        }
        if kind.starts_with("stage_") {
            assert!(event["stage"].is_string(), "{event}");
        }
        if kind.ends_with("_finished") {
            assert!(event["status"].is_string(), "{event}");
            assert!(event["duration_ms"].is_number(), "{event}");
        }
    }
}

/// The fields execution.md documents. The format may gain fields within a version, so the
/// snapshot holds these alone.
const DOCUMENTED: &[&str] = &[
    "v",
    "ts",
    "kind",
    "run",
    "stage",
    "index",
    "attempt",
    "status",
    "error",
    "message",
    "level",
    "duration_ms",
];

/// The events' documented fields, with what changes from run to run replaced, one compact
/// JSON line each.
fn redacted(events: &Events) -> String {
    let mut text = String::new();
    for event in events.all() {
        let Value::Object(fields) = event else {
            panic!("an event is a JSON object: {event}");
        };
        let kept: serde_json::Map<String, Value> = fields
            .iter()
            .filter(|(field, _)| DOCUMENTED.contains(&field.as_str()))
            .map(|(field, value)| {
                let value = match field.as_str() {
                    "ts" => Value::from("[ts]"),
                    "run" => Value::from("[run]"),
                    "duration_ms" => Value::from("[ms]"),
                    _ => value.clone(),
                };
                (field.clone(), value)
            })
            .collect();
        text.push_str(&Value::Object(kept).to_string());
        text.push('\n');
    }
    text
}

#[test]
fn every_event_line_has_the_version_time_kind_and_run() {
    let run = Scenario::new("events_small").run();
    run.assert_code(0);
    assert_well_formed(&run.events, &["copy"]);

    let retried = Scenario::new("retry_until_success").run();
    retried.assert_code(0);
    assert_well_formed(&retried.events, &[]);
    let retrying = retried.events.of_kind("job_retrying");
    assert!(!retrying.is_empty());
    for event in retrying {
        assert!(event["error"]["message"].is_string(), "{event}");
        assert!(event["error"]["retryable"].is_boolean(), "{event}");
        assert!(event["duration_ms"].is_number(), "the wait: {event}");
    }
}

#[test]
fn the_events_of_a_small_run() {
    let run = Scenario::new("events_small").run();

    run.assert_code(0);
    insta::assert_snapshot!(redacted(&run.events));
}
