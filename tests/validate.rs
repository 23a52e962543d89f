//! `weft validate`: every kind of error in a workflow file, as a user sees it, and the
//! examples that must stay valid.
//!
//! The fixtures are snapshotted with `--no-plugins`: they are about the file format, and their
//! messages should not change with the state of a plugin. One test checks that the shipped
//! plugins (built beside the `weft` binary first) find nothing more in them, so that each
//! fixture holds its one mistake and nothing else.

mod common;
#[expect(
    dead_code,
    reason = "only the shipped plugins are used here, not the test-only ones"
)]
#[path = "common/plugins.rs"]
mod plugins;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::weft;

const INVALID: &str = "tests/fixtures/invalid";

/// The invalid fixtures, as relative paths, sorted by name.
fn invalid_fixtures() -> Vec<PathBuf> {
    yaml_files(INVALID)
}

/// The YAML files of a folder of the repository, as relative paths, sorted by name.
fn yaml_files(folder: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = fs::read_dir(root.join(folder))
        .unwrap_or_else(|error| panic!("cannot list `{folder}`: {error}"))
        .map(|entry| entry.expect("a directory entry should read").file_name())
        .map(|name| Path::new(folder).join(name))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "`{folder}` holds no YAML file");
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("a fixture has a file name")
        .to_string_lossy()
        .into_owned()
}

/// The `--format json` report of one file, parsed.
fn json_report(file: &str) -> Vec<Value> {
    let output = weft(&["validate", "--no-plugins", "--format", "json", file]);
    assert_eq!(output.code, 2, "{file}: {output:?}");
    match serde_json::from_str(&output.stdout) {
        Ok(Value::Array(diagnostics)) => diagnostics,
        other => panic!(
            "{file}: stdout is not a JSON array: {other:?}\n{}",
            output.stdout
        ),
    }
}

#[test]
fn every_invalid_fixture_exits_2_and_explains_its_error() {
    for fixture in invalid_fixtures() {
        let output = weft(&[
            Path::new("validate"),
            Path::new("--no-plugins"),
            fixture.as_path(),
        ]);

        let shown = fixture.display();
        assert_eq!(output.code, 2, "{shown}: {output:?}");
        assert!(
            !output.stderr.contains("panicked"),
            "{shown}: {}",
            output.stderr
        );
        assert!(output.stdout.is_empty(), "{shown}: {}", output.stdout);
        insta::assert_snapshot!(
            stem(&fixture),
            format!("exit: {}\n{}", output.code, output.stderr)
        );
    }
}

#[test]
fn each_invalid_fixture_reports_the_kind_it_is_named_after() {
    let expected = [
        ("bad_duration", "invalid-duration"),
        ("bad_expression", "invalid-expression"),
        ("bad_yaml_syntax", "syntax"),
        ("cycle", "cycle"),
        ("duplicate_key", "duplicate-key"),
        ("dynamic_stage_reference", "invalid-expression"),
        ("empty_file", "empty"),
        ("empty_stages", "no-stages"),
        ("fan_out_misuse", "fan-out-misuse"),
        ("fan_out_outputs_on_single", "fan-out-misuse"),
        ("for_each_and_matrix", "fan-out-misuse"),
        ("invalid_stage_id", "invalid-stage-id"),
        ("item_outside_fan_out", "fan-out-misuse"),
        ("missing_key", "missing-key"),
        ("missing_stages", "no-stages"),
        ("retry_typo", "unknown-key"),
        ("self_dependency", "self-dependency"),
        ("unknown_input", "unknown-input"),
        ("unknown_key", "unknown-key"),
        ("unknown_stage", "unknown-stage"),
        ("unknown_stage_in_expression", "unknown-stage"),
        ("unknown_variant", "invalid-value"),
        ("unsupported_version", "unsupported-version"),
        ("wrong_type", "invalid-value"),
    ];

    let single: Vec<String> = invalid_fixtures()
        .iter()
        .map(|fixture| stem(fixture))
        .filter(|stem| stem != "several_errors")
        .collect();
    let named: Vec<&str> = expected.iter().map(|(stem, _)| *stem).collect();
    assert_eq!(single, named, "every single-error fixture is listed here");

    for (stem, kind) in expected {
        let file = format!("{INVALID}/{stem}.yaml");
        let diagnostics = json_report(&file);

        let kinds: Vec<&str> = diagnostics
            .iter()
            .map(|diagnostic| diagnostic["kind"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(kinds, [kind], "{file} should report exactly one error");
    }
}

#[test]
fn json_format_lists_every_error_with_position_path_message_hint_and_kind() {
    let file = format!("{INVALID}/several_errors.yaml");
    let output = weft(&["validate", "--no-plugins", "--format", "json", &file]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    let diagnostics = json_report(&file);
    assert!(diagnostics.len() >= 5, "{diagnostics:#?}");
    for diagnostic in &diagnostics {
        let fields: Vec<&str> = diagnostic
            .as_object()
            .expect("each error is a JSON object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["file", "line", "column", "path", "message", "hint", "kind"]
        );
        assert_eq!(diagnostic["file"], file.as_str());
    }
    let lines: Vec<u64> = diagnostics
        .iter()
        .map(|diagnostic| diagnostic["line"].as_u64().expect("every error has a line"))
        .collect();
    assert!(lines.is_sorted(), "errors are sorted by line: {lines:?}");
    insta::assert_snapshot!("several_errors_json", output.stdout);
}

#[test]
fn errors_in_several_stages_are_all_reported_at_once_sorted_by_line() {
    let output = weft(&[
        "validate",
        "--no-plugins",
        "tests/fixtures/invalid/several_errors.yaml",
    ]);

    let lines: Vec<u32> = output
        .stderr
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--> "))
        .map(|location| {
            let line = location.split(':').nth(1).expect("a location has a line");
            line.parse().expect("the line is a number")
        })
        .collect();
    assert!(lines.len() >= 5, "{}", output.stderr);
    assert!(lines.is_sorted(), "{lines:?}");
    assert!(
        output
            .stderr
            .ends_with(&format!("error: {} errors in 1 file\n", lines.len())),
        "{}",
        output.stderr
    );
}

#[test]
fn the_shipped_plugins_find_nothing_more_in_the_invalid_fixtures() {
    plugins::shipped();

    let mut different = String::new();
    for fixture in invalid_fixtures() {
        let alone = weft(&[
            Path::new("validate"),
            Path::new("--no-plugins"),
            fixture.as_path(),
        ]);
        let with_plugins = weft(&[Path::new("validate"), fixture.as_path()]);

        if with_plugins.code != alone.code || with_plugins.stderr != alone.stderr {
            different.push_str(&format!(
                "{}: exit {}\n{}\n",
                fixture.display(),
                with_plugins.code,
                with_plugins.stderr
            ));
        }
    }
    assert!(
        different.is_empty(),
        "fixtures with more than their one mistake:\n{different}"
    );
}

#[test]
fn every_example_workflow_is_valid_against_the_shipped_plugins() {
    plugins::shipped();

    let mut failures = String::new();
    for example in yaml_files("workflows") {
        let output = weft(&[Path::new("validate"), example.as_path()]);

        let shown = example.display();
        if output.code != 0
            || output.stdout != format!("{shown}: ok\n")
            || !output.stderr.is_empty()
        {
            failures.push_str(&format!(
                "{shown}: exit {}\n{}{}\n",
                output.code, output.stdout, output.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not validate:\n{failures}"
    );
}

#[test]
fn a_good_and_a_bad_file_together_report_the_bad_one_and_exit_2() {
    plugins::shipped();

    let output = weft(&[
        "validate",
        "workflows/wordcount.yaml",
        "tests/fixtures/invalid/unknown_key.yaml",
    ]);

    assert_eq!(output.code, 2, "{output:?}");
    assert_eq!(output.stdout, "workflows/wordcount.yaml: ok\n");
    assert!(
        output
            .stderr
            .contains("--> tests/fixtures/invalid/unknown_key.yaml:12:5"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("wordcount"), "{}", output.stderr);
    assert!(
        output.stderr.ends_with("error: 1 error in 1 file\n"),
        "{}",
        output.stderr
    );
}

#[test]
fn validate_without_a_file_is_a_usage_error() {
    let output = weft(&["validate"]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    assert!(output.stderr.starts_with("error:"), "{}", output.stderr);
    assert!(output.stderr.contains("<FILE>"), "{}", output.stderr);
    assert!(
        output.stderr.contains("Usage: weft validate"),
        "{}",
        output.stderr
    );
}

#[test]
fn validate_with_no_plugins_checks_every_example_alone() {
    let examples = yaml_files("workflows");
    let mut args = vec![Path::new("validate"), Path::new("--no-plugins")];
    args.extend(examples.iter().map(PathBuf::as_path));

    let output = weft(&args);

    assert_eq!(output.code, 0, "{output:?}");
    let expected: String = examples
        .iter()
        .map(|example| format!("{}: ok\n", example.display()))
        .collect();
    assert_eq!(output.stdout, expected);
    assert!(output.stderr.is_empty(), "{}", output.stderr);
}
