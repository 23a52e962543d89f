//! The JSON Schema: the checked-in file is what the code generates, and every example
//! workflow is valid against it, and against the schema `weft schema --plugins` writes.

#[path = "common/plugins.rs"]
#[expect(dead_code, reason = "this binary loads the shipped plugins only")]
mod plugins;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

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

/// `weft schema --plugins`, run from the repository root with the shipped plugins built beside
/// the binary and no `WEFT_PLUGIN_PATH` from the environment.
fn schema_with_plugins() -> Value {
    plugins::shipped();
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["schema", "--plugins"])
        .current_dir(repository())
        .env_remove("WEFT_PLUGIN_PATH")
        .output()
        .expect("weft should start");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the schema is JSON")
}

/// The example workflows, `workflows/*.yaml`, in name order.
fn examples() -> Vec<PathBuf> {
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
    examples
}

/// An example workflow as JSON, the way the loader reads its YAML.
fn example(path: &Path) -> Value {
    let source = std::fs::read_to_string(path).expect("readable example");
    let (value, _) = weft_spec::yaml::parse(&source, &path.display().to_string())
        .unwrap_or_else(|errors| panic!("{}: {errors:?}", path.display()));
    serde_json::to_value(&value).expect("YAML values convert to JSON")
}

/// What `schema` finds wrong in `instance`, one line per error.
fn errors(schema: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    schema
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

#[test]
fn every_example_workflow_is_valid_against_the_schema() {
    let schema: Value = serde_json::from_str(&checked_in_schema()).expect("the schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles as draft-07");

    for path in examples() {
        let source = std::fs::read_to_string(&path).expect("readable example");
        assert!(
            source.starts_with("# yaml-language-server: $schema=../schema/workflow.schema.json\n"),
            "{} should start with the yaml-language-server schema comment",
            path.display()
        );

        let errors = errors(&validator, &example(&path));
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn every_example_workflow_is_valid_against_the_schema_with_plugins() {
    let schema = schema_with_plugins();
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles as draft-07");
    let rules: Vec<&Value> = schema["definitions"]["Stage"]["allOf"]
        .as_array()
        .expect("one rule per job")
        .iter()
        .map(|rule| &rule["if"]["properties"]["job"]["const"])
        .collect();

    for path in examples() {
        let workflow = example(&path);
        // Each job the example runs has its input checked, or the check would prove nothing.
        for (id, stage) in workflow["stages"].as_object().expect("stages") {
            assert!(
                rules.contains(&&stage["job"]),
                "{}: no rule for the job of stage `{id}`, {}",
                path.display(),
                stage["job"]
            );
        }

        let errors = errors(&validator, &workflow);
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn with_plugins_any_value_of_with_may_be_an_expression_and_literals_are_still_checked() {
    let schema = schema_with_plugins();
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles as draft-07");
    // Per place: the job, a `with` whose value there is an expression, and one whose value
    // there is a literal the job refuses.
    let cases = [
        (
            "the whole of `with`",
            "std.range",
            json!("${{ inputs.range }}"),
            json!("ten"),
        ),
        (
            "an integer property",
            "std.range",
            json!({"end": "${{ inputs.n }}"}),
            json!({"end": "ten"}),
        ),
        (
            "an unknown key beside an expression",
            "std.range",
            json!({"end": "${{ inputs.n }}", "start": "${{ inputs.m }}"}),
            json!({"end": "${{ inputs.n }}", "stop": 3}),
        ),
        (
            "a required key",
            "std.range",
            json!({"end": "${{ inputs.n }}"}),
            json!({"start": "${{ inputs.m }}"}),
        ),
        (
            "an array property",
            "std.sum",
            json!({"values": "${{ stages.a.outputs | list }}"}),
            json!({"values": 3}),
        ),
        (
            "an item of an array",
            "std.sum",
            json!({"values": [1, "${{ stages.a.output }}"]}),
            json!({"values": [1, "two"]}),
        ),
        (
            "an item of an array in one branch of `anyOf`",
            "std.concat",
            json!({"values": [["a"], "${{ stages.a.output }}"]}),
            json!({"values": [["a"], 2]}),
        ),
        (
            "an additional property",
            "shell.run",
            json!({"argv": ["env"], "env": {"HOME": "${{ inputs.home }}"}}),
            json!({"argv": ["env"], "env": {"HOME": 1}}),
        ),
        (
            "an additional property in an item",
            "std.top",
            json!({"counts": [{"the": "${{ inputs.n }}"}]}),
            json!({"counts": [{"the": -1}]}),
        ),
        (
            "a choice of constants",
            "std.log",
            json!({"message": "hi", "level": "${{ inputs.level }}"}),
            json!({"message": "hi", "level": "loud"}),
        ),
        (
            "a property of an input with `oneOf` on its keys",
            "hash.sha256",
            json!({"text": "${{ inputs.text }}"}),
            json!({"text": "${{ inputs.text }}", "path": "a.txt"}),
        ),
    ];

    for (place, job, expression, literal) in cases {
        let instance = |with: &Value| json!({"stages": {"a": {"job": job, "with": with}}});
        let errors = errors(&validator, &instance(&expression));
        assert!(
            errors.is_empty(),
            "{place}: `{job}` with {expression} should be valid: {errors:#?}"
        );
        assert!(
            !validator.is_valid(&instance(&literal)),
            "{place}: `{job}` with {literal} should be refused"
        );
    }
}

#[test]
fn with_plugins_editors_still_see_each_jobs_inputs() {
    let schema = schema_with_plugins();
    let with_of = |job: &str| {
        schema["definitions"]["Stage"]["allOf"]
            .as_array()
            .expect("one rule per job")
            .iter()
            .find(|rule| rule["if"]["properties"]["job"]["const"] == job)
            .unwrap_or_else(|| panic!("a rule for {job}"))["then"]["properties"]["with"]
            .clone()
    };
    let expression = json!({"$ref": "#/definitions/Expression"});
    assert_eq!(schema["definitions"]["Expression"]["type"], "string");

    let range = with_of("std.range");
    assert_eq!(range["required"], json!(["end"]));
    assert_eq!(range["additionalProperties"], json!(false));
    let end = &range["properties"]["end"];
    assert!(end["description"].is_string(), "{end}");
    assert_eq!(end["anyOf"][0]["type"], "integer", "{end}");
    assert_eq!(end["anyOf"][1], expression, "{end}");

    let log = with_of("std.log");
    let level = &log["properties"]["level"];
    assert!(level["description"].is_string(), "{level}");
    assert_eq!(level["default"], "info", "{level}");
    let constants: Vec<&Value> = level["anyOf"][0]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("the levels: {level}"))
        .iter()
        .map(|choice| &choice["const"])
        .collect();
    assert!(constants.contains(&&json!("warn")), "{level}");
}

#[test]
fn the_schema_refuses_what_the_loader_refuses() {
    let schema: Value = serde_json::from_str(&checked_in_schema()).expect("the schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles as draft-07");
    let bad = [
        json!({"stages": {"a": {"job": "std.echo", "neds": ["b"]}}}),
        json!({"stages": {"Bad-Id": {"job": "std.echo"}}}),
        json!({"stages": {}}),
        json!({"stages": {"a": {"job": "echo"}}}),
        json!({"stages": {"a": {"job": "std.echo", "max_parallel": 0}}}),
        json!({"stages": {"a": {"job": "std.echo", "tolerate": "150%"}}}),
        json!({"version": 2, "stages": {"a": {"job": "std.echo"}}}),
    ];
    let good = json!({
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
