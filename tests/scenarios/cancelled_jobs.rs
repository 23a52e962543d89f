//! What a cancellation does to each job, by where the job was (execution.md, Cancellation):
//! a job still queued for a thread is dropped without being called, is `cancelled` (never
//! `abandoned`), has no `job_started`, and does not hold its stage for the grace period; a
//! job that was running and returns an error because it was cancelled is `cancelled`, and
//! keeps that error. And a job's timeout counts from when a worker begins it, not while it
//! waits in the queue.
//!
//! A job that blocks its compute thread without looking at its cancellation is `text.read`
//! of a named pipe that nobody writes to yet: opening it waits for a writer.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Events, Run, Scenario, Spawned};

/// How long a test waits for the run to reach a point, and then to end, before it fails as
/// hung.
const GUARD: Duration = Duration::from_secs(20);

/// A named pipe of its own for a test.
fn fifo(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("scenarios")
        .join(format!("{name}-{}.fifo", std::process::id()));
    std::fs::create_dir_all(path.parent().expect("the path is in a folder"))
        .expect("the folder can be made");
    let _ = std::fs::remove_file(&path);
    let made = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("`mkfifo` should start");
    assert!(made.success(), "`mkfifo {}` failed", path.display());
    path
}

/// Lets a `text.read` blocked on opening `fifo` go on: it reads a line, then the end.
fn release(fifo: &Path) {
    let path = fifo.to_owned();
    // On a thread of its own: opening the pipe for writing waits for its reader.
    thread::spawn(move || {
        if let Ok(mut pipe) = OpenOptions::new().write(true).open(&path) {
            let _ = pipe.write_all(b"let go\n");
        }
    });
}

/// A fixture that reads `fifo`, on one compute thread, with `args` besides.
fn on_one_thread(fixture: &str, fifo: &Path, args: &[&str]) -> Scenario {
    let input = format!("fifo={}", fifo.display());
    Scenario::new(fixture)
        .args(&["--workers", "1", "-i", &input])
        .args(args)
}

/// Waits until the events of `child`'s run hold a `kind` of `stage`, and returns them; kills
/// the child and fails as hung after [`GUARD`].
fn wait_for(scenario: &Scenario, child: Spawned, kind: &str, stage: &str) -> (Spawned, Events) {
    let started = Instant::now();
    loop {
        let events = Events::read(scenario.events_path());
        if events.position(kind, stage).is_some() {
            return (child, events);
        }
        if started.elapsed() > GUARD {
            child.kill();
            panic!(
                "hung: no `{kind}` of `{stage}` within {GUARD:?}: {:#?}",
                events.all()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Checks what `queued` did: both jobs cancelled, neither started nor called, no error.
fn assert_queued_jobs_dropped(run: &Run) {
    let events = &run.events;
    assert_eq!(
        events.job_statuses("queued"),
        [
            (Some(0), "cancelled".to_owned()),
            (Some(1), "cancelled".to_owned())
        ],
        "{:#?}",
        events.all()
    );
    assert!(
        events.of_stage("job_started", "queued").is_empty(),
        "a job dropped from the queue never started: {:#?}",
        events.of_stage("job_started", "queued")
    );
    for finished in events.of_stage("job_finished", "queued") {
        assert!(finished.get("error").is_none(), "{finished}");
        assert!(finished.get("worker").is_none(), "{finished}");
    }
    assert_eq!(events.stage_status("queued"), "cancelled");
    let results = run.outputs["queued"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 2, "{}", run.stdout);
    for result in &results {
        assert_eq!(result["status"], "cancelled", "{result}");
        assert_eq!(result["output"], Value::Null, "{result}");
        assert_eq!(result["error"], Value::Null, "{result}");
    }
}

#[test]
fn a_queued_job_is_cancelled_at_once_while_a_stuck_one_has_its_grace_period() {
    // The grace period (30 s) is longer than the guard: the test waits for `queued` to end
    // while `stuck` is still blocked, then lets `stuck` go, and the run ends. Were the queued
    // jobs held for the grace period, the wait would fail as hung.
    let fifo = fifo("queued_behind_stuck");
    let scenario = on_one_thread("queued_behind_stuck", &fifo, &["--grace", "30s"]);
    let child = Spawned::start(&scenario.command_line());

    let (child, seen) = wait_for(&scenario, child, "stage_finished", "queued");
    assert_eq!(
        seen.of_stage("job_started", "stuck").len(),
        1,
        "`stuck` is running: {:#?}",
        seen.all()
    );
    assert!(
        seen.of_stage("job_finished", "stuck").is_empty(),
        "`stuck` is still blocked when `queued` ends: {:#?}",
        seen.all()
    );

    // Lets `stuck` open its pipe: it then sees its cancellation and returns.
    release(&fifo);
    let run = child.finish(&scenario, GUARD);
    let _ = std::fs::remove_file(&fifo);
    let events = &run.events;

    run.assert_code(1);
    assert_queued_jobs_dropped(&run);
    assert!(
        events.position("stage_finished", "queued") < events.position("job_finished", "stuck"),
        "`queued` ends before `stuck` returns: {:#?}",
        events.all()
    );
    // `stuck` returned within its grace period, with the error its cancellation gave it.
    let stuck = events.of_stage("job_finished", "stuck");
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0]["status"], "cancelled", "{}", stuck[0]);
    assert_eq!(stuck[0]["error"]["message"], "cancelled", "{}", stuck[0]);
    assert_eq!(events.stage_status("stuck"), "cancelled");
    assert_eq!(events.run_status(), "failed");
}

#[test]
fn only_a_job_that_was_running_is_abandoned_after_the_grace_period() {
    // `stuck` never returns: it is abandoned when the grace period ends, and the run ends
    // without it. The jobs queued behind it were never called: they are `cancelled`, and
    // ended before the grace period did.
    let fifo = fifo("queued_behind_abandoned");
    let run = on_one_thread("queued_behind_stuck", &fifo, &["--grace", "300ms"]).run();
    let _ = std::fs::remove_file(&fifo);
    let events = &run.events;

    run.assert_code(1);
    assert_queued_jobs_dropped(&run);
    let stuck = events.of_stage("job_finished", "stuck");
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0]["status"], "abandoned", "{}", stuck[0]);
    assert_eq!(events.of_stage("job_started", "stuck").len(), 1);
    assert!(
        events.position("stage_finished", "queued") < events.position("job_finished", "stuck"),
        "`queued` ends before `stuck` is abandoned: {:#?}",
        events.all()
    );
    assert_eq!(run.outputs["stuck"][0]["status"], "abandoned");

    // The summary lists the abandoned job among the failures, and no queued one.
    let failures = run
        .stderr
        .split_once("failures:")
        .map_or("", |(_, failures)| failures);
    assert!(failures.contains("stuck"), "{}", run.stderr);
    assert!(!failures.contains("queued"), "{}", run.stderr);
    assert_eq!(events.run_status(), "failed");
}

#[test]
fn a_cancelled_sleep_keeps_its_cancelled_error() {
    let run = Scenario::new("sleep_cancelled").run();
    let events = &run.events;

    run.assert_code(1);
    let finished = events.of_stage("job_finished", "nap");
    assert_eq!(finished.len(), 2, "{:#?}", events.all());
    for event in finished {
        assert_eq!(event["status"], "cancelled", "{event}");
        assert_eq!(
            event["error"],
            json!({"message": "cancelled", "retryable": false}),
            "{event}"
        );
        assert!(
            event["worker"]["thread"].is_u64(),
            "it ran on a worker: {event}"
        );
    }
    assert_eq!(events.of_stage("job_started", "nap").len(), 2);

    let naps = run.outputs["naps"].as_array().cloned().unwrap_or_default();
    assert_eq!(naps.len(), 2, "{}", run.stdout);
    for nap in &naps {
        assert_eq!(nap["status"], "cancelled", "{nap}");
        assert_eq!(nap["output"], Value::Null, "{nap}");
        assert_eq!(
            nap["error"],
            json!({"message": "cancelled", "retryable": false}),
            "{nap}"
        );
    }
    assert_eq!(run.outputs["report"], "cancelled", "{}", run.stdout);
    assert_eq!(events.stage_status("nap"), "cancelled");
    assert_eq!(events.stage_status("report"), "succeeded");
}

#[test]
fn a_job_waiting_in_the_queue_past_its_timeout_does_not_time_out() {
    // `queued` has a 200ms timeout, and waits in the queue behind `stuck` until the test lets
    // `stuck` go, well after that: its jobs run then, and succeed.
    let fifo = fifo("queued_past_timeout");
    let scenario = on_one_thread("queued_past_timeout", &fifo, &[]);
    let child = Spawned::start(&scenario.command_line());

    let (child, _) = wait_for(&scenario, child, "stage_started", "queued");
    // Long past the timeout; a slow machine only makes the test easier to pass.
    thread::sleep(Duration::from_secs(1));
    release(&fifo);
    let run = child.finish(&scenario, GUARD);
    let _ = std::fs::remove_file(&fifo);
    let events = &run.events;

    run.assert_code(0);
    assert_eq!(
        events.job_statuses("queued"),
        [
            (Some(0), "succeeded".to_owned()),
            (Some(1), "succeeded".to_owned())
        ],
        "{:#?}",
        events.all()
    );
    assert!(events.of_stage("job_retrying", "queued").is_empty());
    assert_eq!(run.outputs["queued"], json!(["a", "b"]));
    assert_eq!(run.outputs["stuck"], "let go\n");
}
