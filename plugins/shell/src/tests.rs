//! Tests of `shell.run`, through the same shim the engine uses.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_plugin::testing::{Scratch, TestCall};

use super::*;

/// A folder of its own under the system's temporary folder, removed on drop.
fn run(input: Value) -> Result<Value, JobError> {
    TestCall::new().run(&Run, input)
}

/// The processes of group `group` that are alive (not zombies), from `/proc`.
fn live_members(group: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command's name, which ends with the last `)`: state, ppid,
        // process group.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        if fields[2] == group.to_string() && fields[0] != "Z" && fields[0] != "X" {
            members.push(pid);
        }
    }
    members
}

/// Waits a little for group `group` to have no live member, and says whether it has none.
fn group_is_gone(group: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if live_members(group).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The pid that a script wrote to `file`, which is also its process group.
fn written_pid(file: &str) -> i32 {
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn run_returns_the_exit_code_and_the_outputs() {
    let output = run(json!({"argv": ["echo", "hello", "world"]})).unwrap();

    assert_eq!(
        output,
        json!({"exit_code": 0, "stdout": "hello world\n", "stderr": ""})
    );
}

#[test]
fn run_passes_arguments_as_they_are_without_a_shell() {
    let output = run(json!({"argv": ["printf", "%s|", "$HOME", "a b", "*"]})).unwrap();

    assert_eq!(output["stdout"], "$HOME|a b|*|");
}

#[test]
fn run_returns_quickly_for_a_quick_program() {
    let started = Instant::now();

    run(json!({"argv": ["true"]})).unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn run_writes_stdin_to_the_program() {
    let output = run(json!({"argv": ["cat"], "stdin": "line 1\nline 2"})).unwrap();

    assert_eq!(output["stdout"], "line 1\nline 2");
}

#[test]
fn run_gives_an_empty_stdin_when_none_is_given() {
    let output = run(json!({"argv": ["cat"]})).unwrap();

    assert_eq!(output["stdout"], "");
}

#[test]
fn run_moves_large_inputs_and_outputs_without_deadlock() {
    let big = "x".repeat(1 << 20);
    let script = "cat; head -c 1048576 /dev/zero | tr '\\0' e >&2";

    let output = run(json!({"argv": [script], "shell": true, "stdin": big})).unwrap();

    assert_eq!(output["stdout"].as_str().unwrap().len(), 1 << 20);
    assert_eq!(output["stderr"].as_str().unwrap().len(), 1 << 20);
}

#[test]
fn run_adds_env_to_the_inherited_environment() {
    let script = "printf '%s %s' \"$WEFT_TEST_GREETING\" \"${PATH:+inherited}\"";

    let output =
        run(json!({"argv": [script], "shell": true, "env": {"WEFT_TEST_GREETING": "hi"}})).unwrap();

    assert_eq!(output["stdout"], "hi inherited");
}

#[test]
fn run_runs_in_cwd() {
    let scratch = Scratch::new("cwd");
    let cwd = scratch.join("");

    let output = run(json!({"argv": ["pwd"], "cwd": cwd})).unwrap();

    let printed = PathBuf::from(output["stdout"].as_str().unwrap().trim_end());
    assert_eq!(
        printed.canonicalize().unwrap(),
        scratch.path().canonicalize().unwrap()
    );
}

#[test]
fn run_refuses_a_missing_cwd() {
    let scratch = Scratch::new("missing_cwd");
    let cwd = scratch.join("nowhere");

    let error = run(json!({"argv": ["true"], "cwd": cwd})).unwrap_err();

    assert_eq!(
        error.message(),
        format!("cannot run in `cwd` `{cwd}`: it does not exist")
    );
    assert!(!error.is_retryable());
}

#[test]
fn run_parses_stdout_as_json_when_asked() {
    let output =
        run(json!({"argv": ["echo", r#"{"a": [1, 2], "b": null}"#], "json": true})).unwrap();

    assert_eq!(output["stdout"], json!({"a": [1, 2], "b": null}));
}

#[test]
fn run_refuses_stdout_that_is_not_json_quoting_its_first_200_bytes() {
    let script = "printf 'not json: '; head -c 500 /dev/zero | tr '\\0' q";

    let error = run(json!({"argv": [script], "shell": true, "json": true})).unwrap_err();

    let quoted = format!("\"not json: {}\"", "q".repeat(200 - "not json: ".len()));
    assert!(
        error.message().starts_with("the output of `sh -c printf"),
        "{error}"
    );
    assert!(
        error
            .message()
            .ends_with(&format!("it starts with: {quoted}")),
        "{error}"
    );
    assert!(!error.is_retryable());
}

#[test]
fn run_fails_on_a_non_zero_exit_naming_the_program_and_the_code() {
    let error = run(json!({"argv": ["sh", "-c", "echo oops >&2; exit 3"]})).unwrap_err();

    assert_eq!(error.message(), "`sh` exited with code 3");
    assert!(
        error.is_retryable(),
        "a failing command may pass on a retry"
    );
}

#[test]
fn run_details_a_failure_with_the_code_and_the_end_of_stderr() {
    let stderr: String = (1..=25).map(|line| format!("line {line}\n")).collect();
    let status = std::process::Command::new("sh")
        .args(["-c", "exit 4"])
        .status()
        .unwrap();

    let error = check_status("tool", status, &stderr).unwrap_err();

    let expected_tail: Vec<String> = (6..=25).map(|line| format!("line {line}")).collect();
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({
            "message": "`tool` exited with code 4",
            "retryable": true,
            "details": {"exit_code": 4, "stderr_tail": expected_tail.join("\n")},
        })
    );
}

#[test]
fn run_returns_a_failed_program_output_when_failure_is_allowed() {
    let output = run(json!({
        "argv": ["echo out; echo err >&2; exit 3"],
        "shell": true,
        "allow_failure": true,
    }))
    .unwrap();

    assert_eq!(
        output,
        json!({"exit_code": 3, "stdout": "out\n", "stderr": "err\n"})
    );
}

#[test]
fn run_reports_a_death_by_signal_as_a_retryable_error() {
    let error = run(json!({"argv": ["kill -9 $$"], "shell": true})).unwrap_err();

    assert_eq!(error.message(), "`sh -c kill -9 $$` killed by signal 9");
    assert!(error.is_retryable());
}

#[test]
fn run_returns_a_null_exit_code_for_a_death_by_signal_when_failure_is_allowed() {
    let output =
        run(json!({"argv": ["kill -9 $$"], "shell": true, "allow_failure": true})).unwrap();

    assert_eq!(output["exit_code"], Value::Null);
}

#[test]
fn run_refuses_an_empty_argv() {
    let error = run(json!({"argv": []})).unwrap_err();

    assert_eq!(
        error.message(),
        "`argv` is empty: give the program and its arguments"
    );
    assert!(!error.is_retryable());
}

#[test]
fn run_refuses_more_than_one_element_with_shell() {
    let error = run(json!({"argv": ["echo", "a"], "shell": true})).unwrap_err();

    assert_eq!(
        error.message(),
        "with `shell: true`, `argv` holds one element, the script for `sh -c`, not 2"
    );
}

#[test]
fn run_refuses_a_program_that_does_not_exist_by_name() {
    let error = run(json!({"argv": ["weft-no-such-program", "x"]})).unwrap_err();

    assert_eq!(error.message(), "program `weft-no-such-program` not found");
    assert!(!error.is_retryable());
}

#[test]
fn run_refuses_a_file_that_is_not_executable() {
    let scratch = Scratch::new("not_executable");
    let path = scratch.join("script.sh");
    std::fs::write(&path, "echo hi\n").unwrap();

    let error = run(json!({ "argv": [path] })).unwrap_err();

    assert_eq!(
        error.message(),
        format!("cannot run `{path}`: permission denied")
    );
    assert!(!error.is_retryable());
}

#[test]
fn run_shortens_a_long_script_in_messages() {
    let script = format!("exit 5 # {}", "é".repeat(80));

    let error = run(json!({"argv": [script], "shell": true})).unwrap_err();

    let shown: String = script.chars().take(60).collect();
    assert_eq!(
        error.message(),
        format!("`sh -c {shown}…` exited with code 5")
    );
}

#[test]
fn run_does_not_start_the_program_when_already_cancelled() {
    let scratch = Scratch::new("already_cancelled");
    let marker = scratch.join("started");

    let error = TestCall::new()
        .cancelled()
        .run(&Run, json!({"argv": ["touch", marker]}))
        .unwrap_err();

    assert!(error.is_cancelled());
    assert!(!std::path::Path::new(&marker).exists());
}

#[test]
fn run_stops_the_whole_group_when_the_deadline_passes() {
    let scratch = Scratch::new("deadline");
    let pid_file = scratch.join("pid");
    let script = format!("echo $$ > {pid_file}; sleep 30; echo never");
    let started = Instant::now();

    let error = TestCall::new()
        .timeout(Duration::from_millis(300))
        .run(&Run, json!({"argv": [script], "shell": true}))
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(error.message().starts_with("`sh -c echo $$ > "), "{error}");
    assert!(
        error.message().ends_with("timed out after 300ms"),
        "{error}"
    );
    assert!(error.is_retryable());
    assert!(group_is_gone(written_pid(&pid_file)));
}

#[test]
fn run_kills_a_group_that_ignores_sigterm_after_half_the_grace_period() {
    let scratch = Scratch::new("trap");
    let pid_file = scratch.join("pid");
    let script = format!("trap '' TERM; echo $$ > {pid_file}; sleep 30");
    let started = Instant::now();

    let error = TestCall::new()
        .timeout(Duration::from_millis(300))
        .grace(Duration::from_secs(2))
        .run(&Run, json!({"argv": [script], "shell": true}))
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(error.message().contains("timed out"), "{error}");
    assert!(group_is_gone(written_pid(&pid_file)));
}

#[test]
fn run_output_schema_allows_a_null_exit_code() {
    let schema = serde_json::to_value(schemars::schema_for!(RunOutput)).unwrap();

    assert_eq!(
        schema["properties"]["exit_code"]["type"],
        json!(["integer", "null"])
    );
}

#[test]
fn shorten_cuts_at_a_character_boundary() {
    assert_eq!(shorten("abc", 3), "abc");
    assert_eq!(shorten("abcd", 3), "abc…");
    assert_eq!(shorten("ééé", 2), "éé…");
}

#[test]
fn round_to_millis_rounds_to_the_nearest_millisecond() {
    assert_eq!(
        round_to_millis(Duration::from_micros(299_600)),
        Duration::from_millis(300)
    );
    assert_eq!(
        round_to_millis(Duration::from_micros(1_500_400)),
        Duration::from_millis(1500)
    );
}

#[test]
fn tail_keeps_the_last_lines() {
    assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    assert_eq!(tail("a", 20), "a");
    assert_eq!(tail("", 20), "");
}
