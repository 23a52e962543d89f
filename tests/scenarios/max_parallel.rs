//! `max_parallel` is a ceiling, on a stage and on a whole run: `misbehave.concurrency` reports
//! the most of its calls it ever saw running at once in the process.

use serde_json::Value;

use crate::support::Scenario;

fn most(outputs: &Value) -> u64 {
    outputs["most"]
        .as_u64()
        .unwrap_or_else(|| panic!("`most` should be a count: {outputs}"))
}

#[test]
fn a_stage_never_runs_more_jobs_at_once_than_its_max_parallel() {
    let run = Scenario::new("max_parallel_stage").with_misbehave().run();

    run.assert_code(0);
    let most = most(&run.outputs);
    assert!(most <= 3, "{most} jobs ran at once, over `max_parallel: 3`");
    assert!(
        most >= 2,
        "jobs should run side by side, but at most {most} did"
    );
    assert_eq!(run.events.of_stage("job_finished", "hold").len(), 12);
}

#[test]
fn a_run_never_runs_more_jobs_at_once_than_its_max_parallel() {
    let run = Scenario::new("max_parallel_run").with_misbehave().run();

    run.assert_code(0);
    let most = most(&run.outputs);
    assert!(
        most <= 3,
        "{most} jobs of two stages ran at once, over the run's `max_parallel: 3`"
    );
    assert!(
        most >= 2,
        "jobs should run side by side, but at most {most} did"
    );
    assert_eq!(run.events.stage_status("left"), "succeeded");
    assert_eq!(run.events.stage_status("right"), "succeeded");
}
