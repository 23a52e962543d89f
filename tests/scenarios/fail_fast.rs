//! `on_error: fail_fast` (the default): a failed stage cancels the run at once. Running jobs
//! are cancelled, queued ones never start, stages not started are cancelled, and `always()`
//! stages still run.

use crate::support::Scenario;

#[test]
fn fail_fast_cancels_running_siblings_and_skips_the_rest_while_always_stages_run() {
    // The sleeps take 10 s each: only their cancellation lets the run end under the guard.
    let run = Scenario::new("fail_fast").run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("boom"), "failed");

    let naps = events.job_statuses("nap");
    assert_eq!(naps.len(), 3, "every sleep should have started: {naps:?}");
    assert!(
        naps.iter().all(|(_, status)| status == "cancelled"),
        "the running sleeps should be cancelled: {naps:?}"
    );
    assert_eq!(events.stage_status("nap"), "cancelled");

    assert_eq!(
        events.job_statuses("queue"),
        [(Some(0), "cancelled".to_owned())],
        "only the first item of `queue` may start; the others stay queued"
    );
    assert_eq!(events.of_stage("job_started", "queue").len(), 1);
    assert_eq!(events.stage_status("queue"), "cancelled");

    assert!(!events.stage_started("after"), "`after` needs the failure");
    assert_eq!(events.stage_status("after"), "cancelled");

    assert!(events.stage_started("tidy"));
    assert_eq!(events.stage_status("tidy"), "succeeded");
    assert_eq!(run.outputs["tidy"], "tidied");
    assert_eq!(events.run_status(), "failed");
}
