//! An empty fan-out is a stage that succeeds at once with `outputs: []`.

use serde_json::json;

use crate::support::Scenario;

#[test]
fn an_empty_fan_out_succeeds_with_no_outputs() {
    let run = Scenario::new("empty_fan_out").run();
    let events = &run.events;

    run.assert_code(0);
    assert_eq!(run.outputs["none"], json!([]));
    assert_eq!(run.outputs["status"], "succeeded");
    assert_eq!(run.outputs["count"], 0);
    assert_eq!(events.stage_status("none"), "succeeded");
    assert!(events.of_stage("job_started", "none").is_empty());
    assert_eq!(events.stage_status("count"), "succeeded");
}
