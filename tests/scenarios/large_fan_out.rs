//! A fan-out of 100,000 items completes, and its fan-in sees every output.

use std::time::Duration;

use crate::support::Scenario;

/// A debug build runs this fan-out in about 12 s on two cores, too close to the common hang
/// guard of 20 s when other tests share the machine: this test allows more.
const GUARD: Duration = Duration::from_secs(120);

#[test]
fn a_fan_out_of_100_000_items_completes_with_the_right_totals() {
    // Without an events file: 200,000 job events would only add time.
    let run = Scenario::new("large_fan_out")
        .without_events()
        .run_within(GUARD);

    run.assert_code(0);
    assert_eq!(run.outputs["count"], 100_000);
    assert_eq!(run.outputs["total"], 4_999_950_000_u64);
    assert_eq!(run.outputs["last"], 99_999);
}
