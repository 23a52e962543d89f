//! `on_error: finish`: after a failure no new job and no new retry starts anywhere; running
//! jobs finish; stages that never started are cancelled; `always()` and `failure()` stages
//! run; the run fails.

use serde_json::json;

use crate::support::Scenario;

#[test]
fn finish_lets_running_jobs_end_and_starts_no_new_one() {
    let run = Scenario::new("on_error_finish").run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("boom"), "failed");

    assert_eq!(
        events.job_statuses("running"),
        [(None, "succeeded".to_owned())]
    );
    assert_eq!(events.stage_status("running"), "succeeded");
    assert_eq!(run.outputs["running"], "done");

    assert_eq!(
        events.job_statuses("queue"),
        [(Some(0), "succeeded".to_owned())],
        "the item running at the failure ends; the items behind it never start"
    );
    assert_eq!(events.of_stage("job_started", "queue").len(), 1);
    assert_eq!(events.stage_status("queue"), "cancelled");
    assert_eq!(run.outputs["queue"], json!([0, null, null, null]));

    assert!(!events.stage_started("later"));
    assert_eq!(events.stage_status("later"), "cancelled");

    assert_eq!(events.stage_status("tidy"), "succeeded");
    assert_eq!(run.outputs["tidy"], "tidied");
    assert_eq!(events.stage_status("report"), "succeeded");
    assert_eq!(run.outputs["report"], "reported");
    assert_eq!(events.run_status(), "failed");
}

#[test]
fn finish_starts_no_new_retry_of_a_job_waiting_to_retry() {
    // `flaky` fails at once and waits (up to 2 s, with jitter) before its one retry; `boom`
    // fails at about 50 ms, and from then on no attempt may start.
    let run = Scenario::new("finish_during_backoff").run();
    let events = &run.events;

    run.assert_code(1);
    let failed = events
        .position("stage_finished", "boom")
        .expect("`boom` finishes");
    let late: Vec<_> = events.all()[failed..]
        .iter()
        .filter(|event| event["kind"] == "job_started" && event["stage"] == "flaky")
        .collect();
    assert!(
        late.is_empty(),
        "`flaky` started an attempt after `boom` failed: {late:#?}"
    );
}

#[test]
fn finish_starts_no_job_that_was_waiting_for_a_pool_slot() {
    // With one thread in the waiting lane, `queued` waits for the slot `hold` has for 300 ms;
    // `boom` fails meanwhile, so `queued` must never start.
    let run = Scenario::new("finish_queued_job")
        .args(&["--wait-workers", "1"])
        .run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("boom"), "failed");
    assert_eq!(events.stage_status("hold"), "succeeded");
    assert!(
        events.of_stage("job_started", "queued").is_empty(),
        "`queued` started after `boom` failed: {:#?}",
        events.all()
    );
    assert_eq!(events.stage_status("queued"), "cancelled");
}
