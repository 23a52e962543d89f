//! The JSON Schema: the checked-in file is what the code generates, and every example
//! workflow is valid against it.

use std::path::Path;
use std::process::Command;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn checked_in_schema() -> String {
    std::fs::read_to_string(repository().join("schema/workflow.schema.json"))
        .expect("schema/workflow.schema.json should exist")
}

#[test]
fn the_checked_in_schema_is_what_weft_schema_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("schema")
        .output()
        .expect("weft should start");

    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("the schema is UTF-8");
    assert!(
        printed == checked_in_schema(),
        "schema/workflow.schema.json is stale: run `cargo run -- schema > schema/workflow.schema.json`"
    );
}

#[test]
fn every_example_workflow_is_valid_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&checked_in_schema()).expect("the schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles as draft-07");

    let mut examples: Vec<_> = std::fs::read_dir(repository().join("workflows"))
        .expect("workflows/ should exist")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 5,
        "expected at least five examples, found {examples:?}"
    );

    for path in examples {
        let source = std::fs::read_to_string(&path).expect("readable example");
        assert!(
            source.starts_with("# yaml-language-server: $schema=../schema/workflow.schema.json\n"),
            "{} should start with the yaml-language-server schema comment",
            path.display()
        );

        let (value, _) = weft_spec::yaml::parse(&source, &path.display().to_string())
            .unwrap_or_else(|errors| panic!("{}: {errors:?}", path.display()));
        let instance = serde_json::to_value(&value).expect("YAML values convert to JSON");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn the_schema_refuses_what_the_loader_refuses() {
    let schema: serde_json::Value =
        serde_json::from_str(&checked_in_schema()).expect("the schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles as draft-07");
    let bad = [
        serde_json::json!({"stages": {"a": {"job": "std.echo", "neds": ["b"]}}}),
        serde_json::json!({"stages": {"Bad-Id": {"job": "std.echo"}}}),
        serde_json::json!({"stages": {}}),
        serde_json::json!({"stages": {"a": {"job": "echo"}}}),
        serde_json::json!({"stages": {"a": {"job": "std.echo", "max_parallel": 0}}}),
        serde_json::json!({"stages": {"a": {"job": "std.echo", "tolerate": "150%"}}}),
        serde_json::json!({"version": 2, "stages": {"a": {"job": "std.echo"}}}),
    ];
    let good = serde_json::json!({
        "x-anchors": {"anything": true},
        "stages": {"a": {"job": "std.echo", "x-note": 1, "retry": {"attempts": 2}, "tolerate": "10%"}}
    });

    for instance in &bad {
        assert!(
            !validator.is_valid(instance),
            "should be refused: {instance}"
        );
    }
    assert!(validator.is_valid(&good));
}
