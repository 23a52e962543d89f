//! SIGINT and SIGTERM cancel the run: running jobs are cancelled, stages not started are
//! cancelled, `always()` stages still run, and `weft` exits with 130 or 143.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Events, Run, Scenario, Spawned};

/// How long a test waits for the run to start, and then to end, before it fails as hung.
const GUARD: Duration = Duration::from_secs(20);

/// Runs the `interrupted` fixture, sends `signal` once a job has started, and waits.
fn interrupt(signal: &str) -> Run {
    let scenario = Scenario::new("interrupted");
    let child = Spawned::start(&scenario.command_line());

    let started = Instant::now();
    while Events::read(scenario.events_path())
        .of_kind("job_started")
        .is_empty()
    {
        if started.elapsed() > GUARD {
            child.kill();
            panic!("hung: no job started within {GUARD:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }

    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("`kill` should start");
    assert!(sent.success(), "`kill -{signal}` failed");

    child.finish(&scenario, GUARD)
}

fn assert_cancelled_with_always_stages_run(run: &Run) {
    let events = &run.events;
    let naps = events.job_statuses("nap");
    assert_eq!(naps.len(), 2, "{naps:?}");
    assert!(
        naps.iter().all(|(_, status)| status == "cancelled"),
        "{naps:?}"
    );
    assert_eq!(events.stage_status("nap"), "cancelled");
    assert!(!events.stage_started("after"));
    assert_eq!(events.stage_status("after"), "cancelled");
    assert_eq!(events.stage_status("tidy"), "succeeded");
    assert_eq!(run.outputs["tidy"], "tidied");
    assert_eq!(events.run_status(), "cancelled");
}

#[test]
fn sigint_ends_the_run_with_130_and_always_stages_still_run() {
    let run = interrupt("INT");

    run.assert_code(130);
    assert_cancelled_with_always_stages_run(&run);
}

#[test]
fn sigterm_ends_the_run_with_143_and_always_stages_still_run() {
    let run = interrupt("TERM");

    run.assert_code(143);
    assert_cancelled_with_always_stages_run(&run);
}
