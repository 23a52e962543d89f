//! Fan-in keeps item order: a fan-out's `outputs` (and `results`) are in the order of its
//! items, not in the order its jobs finished.

use serde_json::json;

use crate::support::Scenario;

#[test]
fn fan_in_order_is_item_order_when_items_finish_in_reverse() {
    let run = Scenario::new("fan_in_order").run();

    run.assert_code(0);
    let finished: Vec<u64> = run
        .events
        .of_stage("job_finished", "wait")
        .iter()
        .filter_map(|event| event["index"].as_u64())
        .collect();
    assert_eq!(
        finished,
        [5, 4, 3, 2, 1, 0],
        "the fixture should make the last item finish first"
    );
    assert_eq!(run.outputs["values"], json!(["a", "b", "c", "d", "e", "f"]));
    assert_eq!(run.outputs["indexes"], json!([0, 1, 2, 3, 4, 5]));
    assert_eq!(run.outputs["joined"], "abcdef");
}
