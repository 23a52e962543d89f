//! Inputs are checked before the run starts: a value of the wrong type, an unknown input, a
//! missing required input or a value outside `enum` is refused with exit 2 and a message that
//! names the input, and nothing runs.

use crate::support::{Run, Scenario};

fn run_with(inputs: &[&str]) -> Run {
    let mut args = Vec::new();
    for input in inputs {
        args.extend(["-i", input]);
    }
    Scenario::new("inputs").args(&args).run()
}

#[track_caller]
fn assert_refused(run: &Run, message: &str) {
    run.assert_code(2);
    assert!(
        run.stderr.contains(message),
        "stderr should say {message:?}:\n{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing runs: {}", run.stdout);
    assert!(
        run.events.all().is_empty(),
        "nothing runs: {:?}",
        run.events
    );
}

#[test]
fn an_input_of_the_wrong_type_is_refused() {
    let run = run_with(&["name=ann", "count=abc"]);

    assert_refused(
        &run,
        "input `count` must be an integer, got the string `abc`",
    );
}

#[test]
fn an_unknown_input_is_refused() {
    let run = run_with(&["name=ann", "colour=red"]);

    assert_refused(&run, "unknown input `colour`");
}

#[test]
fn a_missing_required_input_is_refused() {
    let run = run_with(&[]);

    assert_refused(&run, "missing required input `name`");
}

#[test]
fn an_input_outside_its_enum_is_refused() {
    let run = run_with(&["name=ann", "mode=shout"]);

    assert_refused(&run, "input `mode` must be `quiet` or `loud`");
}

#[test]
fn every_bad_input_is_reported_at_once() {
    let run = run_with(&["count=abc", "colour=red", "mode=shout"]);

    run.assert_code(2);
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn inputs_of_the_right_type_are_taken() {
    let run = run_with(&["name=5", "count=4", "mode=loud"]);

    run.assert_code(0);
    assert_eq!(run.outputs["greeting"], "5 x 4, loud");
}
