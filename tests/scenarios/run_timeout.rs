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
