//! `on_error: continue`: the stages that depend on the failed one, directly or not, are
//! skipped; the other branches go on; the run fails at the end.

use crate::support::Scenario;

#[test]
fn continue_skips_only_the_dependents_of_the_failed_stage() {
    let run = Scenario::new("on_error_continue").run();
    let events = &run.events;

    run.assert_code(1);
    assert_eq!(events.stage_status("boom"), "failed");
    for dependent in ["child", "grandchild"] {
        assert!(
            !events.stage_started(dependent),
            "`{dependent}` should not run"
        );
        assert_eq!(events.stage_status(dependent), "skipped");
    }

    assert_eq!(events.stage_status("slow"), "succeeded");
    assert_eq!(events.stage_status("other"), "succeeded");
    assert!(
        events.position("stage_finished", "boom") < events.position("stage_started", "other"),
        "`other` should start after the failure, and still run"
    );
    assert_eq!(run.outputs["other"], "after slow");
    assert_eq!(events.run_status(), "failed");
}
