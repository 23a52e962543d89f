//! Retries: a failed attempt is retried while attempts remain, each attempt counted in the
//! events; a cancellation stops the retry loop, backoff sleeps included.

use crate::support::Scenario;

#[test]
fn a_job_that_succeeds_on_its_third_attempt_is_retried_twice() {
    let run = Scenario::new("retry_until_success").run();
    let events = &run.events;

    run.assert_code(0);
    let attempts: Vec<u64> = events
        .of_stage("job_started", "flaky")
        .iter()
        .filter_map(|event| event["attempt"].as_u64())
        .collect();
    assert_eq!(attempts, [1, 2, 3]);

    let retrying = events.of_stage("job_retrying", "flaky");
    assert_eq!(retrying.len(), 2);
    for (event, attempt) in retrying.iter().zip(1..) {
        assert_eq!(event["attempt"], attempt);
        assert_eq!(event["error"]["message"], "not yet");
        assert_eq!(event["error"]["retryable"], true);
    }

    let finished = events.of_stage("job_finished", "flaky");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["status"], "succeeded");
    assert_eq!(finished[0]["attempt"], 3);
    assert_eq!(run.outputs["status"], "succeeded");
}

#[test]
fn a_cancellation_ends_a_job_waiting_to_retry_with_no_further_attempt() {
    // `stubborn` waits up to an hour before each retry: only the cancellation ends it.
    let run = Scenario::new("retry_cancelled").run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("boom"), "failed");
    assert_eq!(
        events.of_stage("job_started", "stubborn").len(),
        1,
        "no retry may start: {:#?}",
        events.all()
    );
    assert_eq!(events.of_stage("job_retrying", "stubborn").len(), 1);

    let finished = events.of_stage("job_finished", "stubborn");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["status"], "cancelled");
    assert_eq!(finished[0]["attempt"], 1);
    assert!(
        events.position("stage_finished", "boom") < events.position("job_finished", "stubborn"),
        "`stubborn` ends because `boom` failed"
    );
    assert_eq!(events.stage_status("stubborn"), "cancelled");
}
