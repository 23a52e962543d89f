//! A plugin job that panics fails that job alone: its siblings succeed, and the error names
//! the panic.

use serde_json::json;

use crate::support::Scenario;

#[test]
fn a_panicking_job_fails_only_its_job() {
    let run = Scenario::new("panicking_job").with_misbehave().run();
    let events = &run.events;

    run.assert_code(0);
    assert_eq!(
        events.job_statuses("mixed"),
        [
            (Some(0), "succeeded".to_owned()),
            (Some(1), "succeeded".to_owned()),
            (Some(2), "failed".to_owned()),
            (Some(3), "succeeded".to_owned()),
        ]
    );
    let failed = events
        .of_stage("job_finished", "mixed")
        .into_iter()
        .find(|event| event["index"] == 2)
        .expect("item 2 finishes");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("item 2 gave up"),
        "the error should hold the panic message: {message}"
    );
    assert_eq!(events.stage_status("mixed"), "succeeded");
    assert_eq!(
        run.outputs["values"],
        json!(["item 0 gave up", "item 1 gave up", null, "item 3 gave up"])
    );
}
