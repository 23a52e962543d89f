//! A job that ignores its cancellation is abandoned after the `grace` period: it is reported
//! `abandoned`, and the run ends without waiting for it.

use crate::support::Scenario;

#[test]
fn a_job_that_ignores_cancellation_is_abandoned_after_the_grace_period() {
    // `stuck` sleeps 30 s without looking at its token; the run must end long before, which
    // the hang guard (20 s) checks.
    let run = Scenario::new("abandoned").with_misbehave().run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("boom"), "failed");

    let finished = events.of_stage("job_finished", "stuck");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["status"], "abandoned");
    let message = finished[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("grace") && message.contains("300ms"),
        "the error should name the grace period: {message}"
    );
    assert!(
        events.position("stage_finished", "boom") < events.position("job_finished", "stuck"),
        "`stuck` is abandoned after the cancellation"
    );
    assert_eq!(events.stage_status("stuck"), "cancelled");
    assert_eq!(events.run_status(), "failed");
}

#[test]
fn a_cancelled_job_no_longer_times_out() {
    // The run is cancelled at about 100 ms, before the jobs' 300 ms timeout: from then on
    // the grace period is their only deadline.
    let run = Scenario::new("cancelled_before_timeout")
        .with_misbehave()
        .run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(
        events.job_statuses("returns"),
        [(None, "succeeded".to_owned())],
        "a job that finishes its work within the grace period keeps its result"
    );
    assert_eq!(
        events.job_statuses("stuck"),
        [(None, "abandoned".to_owned())]
    );
    assert_eq!(events.stage_status("stuck"), "cancelled");
    assert_eq!(events.run_status(), "failed");
}
