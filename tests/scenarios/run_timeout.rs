//! The run's `timeout` cancels the whole run: running jobs are cancelled, stages not started
//! are cancelled, `always()` stages run, and the run fails.

use crate::support::Scenario;

#[test]
fn the_run_timeout_cancels_everything_and_fails_the_run() {
    let run = Scenario::new("run_timeout").run();
    let events = &run.events;

    run.assert_code(1);
    for stage in ["nap", "single"] {
        let jobs = events.job_statuses(stage);
        assert!(!jobs.is_empty(), "`{stage}` should have started its jobs");
        assert!(
            jobs.iter().all(|(_, status)| status == "cancelled"),
            "`{stage}`: {jobs:?}"
        );
        assert_eq!(events.stage_status(stage), "cancelled");
    }
    assert!(!events.stage_started("after"));
    assert_eq!(events.stage_status("after"), "cancelled");
    assert_eq!(events.stage_status("tidy"), "succeeded");
    assert_eq!(run.outputs["tidy"], "cancelled");
    assert_eq!(events.run_status(), "failed");
}

#[test]
fn durations_past_what_the_clock_holds_are_never_reached() {
    // A timeout and a grace period of 500 billion years: `nap` succeeds, `boom` cancels
    // `sleeper` (which stops at once), and the `always()` stage still runs.
    let run = Scenario::new("huge_durations").run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("nap"), "succeeded");
    assert_eq!(events.stage_status("sleeper"), "cancelled");
    assert_eq!(events.stage_status("tidy"), "succeeded");
    assert_eq!(run.outputs["tidy"], "tidied");
}

#[test]
fn jobs_queued_in_the_pool_are_dropped_without_starting() {
    let run = Scenario::new("queued_dropped")
        .with_misbehave()
        .args(&["--workers", "1"])
        .run();

    run.assert_code(1);
    assert_eq!(
        run.events.job_statuses("spinners"),
        (0..4)
            .map(|index| (Some(index), "cancelled".to_owned()))
            .collect::<Vec<_>>()
    );
    // The summary's attempts column: only the spinner that was running made an attempt.
    let row: Vec<&str> = run
        .stderr
        .lines()
        .find(|line| line.starts_with("spinners "))
        .unwrap_or_else(|| panic!("no summary row for `spinners`:\n{}", run.stderr))
        .split_whitespace()
        .collect();
    assert_eq!(row[1..7], ["cancelled", "0", "0", "4", "0", "1"], "{row:?}");
}
