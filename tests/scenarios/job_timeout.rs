//! A job's `timeout` fires the token of that job alone: the job times out, its siblings go
//! on, and `tolerate` counts it as a failure.

use serde_json::json;

use crate::support::Scenario;

#[test]
fn a_job_timeout_fails_only_that_job() {
    let run = Scenario::new("job_timeout").run();
    let events = &run.events;

    run.assert_code(0);
    assert_eq!(
        events.job_statuses("nap"),
        [
            (Some(0), "succeeded".to_owned()),
            (Some(1), "timed_out".to_owned()),
            (Some(2), "succeeded".to_owned()),
            (Some(3), "succeeded".to_owned()),
        ]
    );
    let timed_out = events
        .of_stage("job_finished", "nap")
        .into_iter()
        .find(|event| event["index"] == 1)
        .expect("item 1 finishes");
    assert!(
        timed_out["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("timed out")),
        "{timed_out}"
    );
    assert_eq!(events.stage_status("nap"), "succeeded");
    assert_eq!(run.outputs["values"], json!([0, null, 2, 3]));
}

#[test]
fn a_timed_out_job_that_ignores_cancellation_still_fails_its_stage() {
    // No cancellation of the run: the job only exceeded its own timeout, so the stage fails
    // (nothing is tolerated) and so does the run.
    let run = Scenario::new("job_timeout_ignored").with_misbehave().run();
    let events = &run.events;

    assert_eq!(events.stage_status("stuck"), "failed");
    assert_eq!(events.run_status(), "failed");
    run.assert_code(1);
}
