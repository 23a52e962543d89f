//! `weft plugins`, `weft validate` against plugins, `weft schema --plugins`, and the scaffold
//! of `weft plugins new`, end to end through the binary.

#[path = "common/plugins.rs"]
#[expect(
    dead_code,
    reason = "this binary loads the shipped and misbehaving plugins only"
)]
mod plugins;

use std::path::Path;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `weft` from the repository root, with the shipped plugins built and no
/// `WEFT_PLUGIN_PATH` from the environment.
fn weft(args: &[&str]) -> Run {
    plugins::shipped();
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(root())
        .env_remove("WEFT_PLUGIN_PATH")
        .output()
        .expect("weft should start");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Replaces the machine's paths with stable names.
fn redact(text: &str) -> String {
    text.replace(env!("CARGO_TARGET_TMPDIR"), "[tmp]")
        .replace(&root().display().to_string(), "[root]")
}

#[test]
fn weft_plugins_lists_the_shipped_plugins_with_their_jobs() {
    let run = weft(&["plugins"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout));
}

#[test]
fn weft_plugins_show_is_a_manual_of_the_jobs() {
    let run = weft(&["plugins", "show", "text"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout));
}

#[test]
fn weft_plugins_show_of_an_unknown_plugin_suggests_one() {
    let run = weft(&["plugins", "show", "texts"]);

    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: no plugin `texts`\n  = hint: did you mean `text`?\n"
    );
}

#[test]
fn every_example_validates_against_the_shipped_plugins() {
    let examples: Vec<String> = std::fs::read_dir(root().join("workflows"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .map(|path| path.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    let mut args = vec!["validate"];
    args.extend(examples.iter().map(String::as_str));

    let run = weft(&args);

    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn validate_checks_jobs_and_literal_inputs_against_the_plugins() {
    let folder = root().join("tests/fixtures/plugins");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();

    for file in files {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        let run = weft(&["validate", &relative]);

        assert_eq!(run.code, 2, "{relative} should be refused:\n{}", run.stderr);
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, redact(&run.stderr));
    }
}

#[test]
fn expressions_in_with_are_left_to_run_time() {
    let run = weft(&["validate", "tests/fixtures/valid/expression_inputs.yaml"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn no_plugins_checks_the_file_alone() {
    let run = weft(&[
        "validate",
        "--no-plugins",
        "tests/fixtures/plugins/unknown_plugin.yaml",
    ]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "tests/fixtures/plugins/unknown_plugin.yaml: ok\n"
    );
}

#[test]
fn a_workflows_plugins_path_is_searched() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workflow-plugins-path");
    std::fs::create_dir_all(&folder).unwrap();
    let library = format!("libweft_test_misbehave.{}", std::env::consts::DLL_EXTENSION);
    copy_library(
        &plugins::test_only().misbehave,
        &library,
        &folder.join("lib"),
    );
    let workflow = folder.join("uses-misbehave.yaml");
    std::fs::write(
        &workflow,
        "plugins:\n  misbehave: {path: lib, version: \">=0.1, <0.2\"}\nstages:\n  boom:\n    job: misbehave.panic\n    with: {message: hi}\n",
    )
    .unwrap();

    let run = weft(&["validate", &workflow.display().to_string()]);

    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Copies the library `library` from the folder `from` into the folder `to`, made if need be.
fn copy_library(from: &Path, library: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join(library), to.join(library)).unwrap();
}

/// A folder of its own under the test target folder, holding a copy of the shipped library
/// of `plugin` at `pinned/`, and the workflow `source` as `flow.yaml`. Returns the workflow.
fn pinned_copy(name: &str, plugin: &str, source: &str) -> String {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let library = format!("libweft_{plugin}.{}", std::env::consts::DLL_EXTENSION);
    copy_library(plugins::shipped(), &library, &folder.join("pinned"));
    let workflow = folder.join("flow.yaml");
    std::fs::write(&workflow, source.replace("LIBRARY", &library)).unwrap();
    workflow.display().to_string()
}

#[test]
fn a_pinned_copy_of_a_shipped_plugin_is_used_without_a_conflict() {
    for path in ["pinned/LIBRARY", "pinned"] {
        let workflow = pinned_copy(
            "pinned-std",
            "std",
            &format!(
                "plugins:\n  std: {{path: {path}}}\nstages:\n  hello:\n    job: std.echo\n    with: {{value: 7}}\noutputs:\n  seven: ${{{{ stages.hello.output }}}}\n"
            ),
        );

        let run = weft(&["run", "--quiet", &workflow]);

        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        let outputs: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(outputs, serde_json::json!({"seven": 7}), "{path}");
    }
}

#[test]
fn a_pinned_copy_wins_over_a_copy_in_a_folder_pinned_for_another_plugin() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pins-crossed");
    let _ = std::fs::remove_dir_all(&folder);
    let extension = std::env::consts::DLL_EXTENSION;
    // `std` is pinned to `own/`; `text` to `other/`, which holds a copy of `std` too and is
    // searched first. A folder of links into the build counts as its own place.
    for (place, plugin) in [("own", "std"), ("other", "text"), ("other", "std")] {
        let library = format!("libweft_{plugin}.{extension}");
        copy_library(plugins::shipped(), &library, &folder.join(place));
    }
    std::fs::create_dir_all(folder.join("links")).unwrap();
    let hash = format!("libweft_hash.{extension}");
    std::os::unix::fs::symlink(
        plugins::shipped().join(&hash).canonicalize().unwrap(),
        folder.join("links").join(&hash),
    )
    .unwrap();
    let workflow = folder.join("flow.yaml");
    std::fs::write(
        &workflow,
        "plugins:\n  std: {path: own}\n  text: {path: other}\n  hash: {path: links}\nstages:\n  hello:\n    job: std.echo\n    with: {value: 1}\n  digest:\n    job: hash.sha256\n    with: {text: hi}\n",
    )
    .unwrap();

    let run = weft(&["validate", &workflow.display().to_string()]);

    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_pin_to_nothing_or_to_another_plugin_is_an_error_at_its_line() {
    let cases = [
        (
            "plugins:\n  std:\n    path: missing/libweft_std.so\n",
            "plugin `std` is not where `path` says: nothing is at",
        ),
        (
            "plugins:\n  std:\n    path: pinned/LIBRARY\n",
            "declares the plugin `text`, not `std`",
        ),
        ("plugins:\n  std:\n    path: pinned\n", "no library in"),
    ];
    for (plugins_entry, message) in cases {
        let workflow = pinned_copy(
            "pinned-wrong",
            "text",
            &format!(
                "{plugins_entry}stages:\n  hello:\n    job: std.echo\n    with: {{value: 1}}\n"
            ),
        );

        let run = weft(&["validate", &workflow]);

        assert_eq!(run.code, 2, "{plugins_entry}: {}", run.stderr);
        assert!(
            run.stderr.contains(message),
            "{plugins_entry}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("flow.yaml:3:"),
            "{plugins_entry}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("plugins.std.path"), "{}", run.stderr);
    }
}

#[test]
fn a_plugin_outside_the_version_range_is_an_error() {
    let run = weft(&["validate", "tests/fixtures/version/std_too_old.yaml"]);

    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("plugin `std` is version 0.1.0, outside the range `>=2.0`"),
        "{}",
        run.stderr
    );
}

#[test]
fn schema_with_plugins_attaches_each_jobs_input_to_with() {
    let run = weft(&["schema", "--plugins"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let rules = schema["definitions"]["Stage"]["allOf"]
        .as_array()
        .expect("rules per job");
    let range = rules
        .iter()
        .find(|rule| rule["if"]["properties"]["job"]["const"] == "std.range")
        .expect("a rule for std.range");
    assert_eq!(
        range["then"]["properties"]["with"]["required"],
        serde_json::json!(["end"])
    );

    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles");
    let bad = serde_json::json!({"stages": {"a": {"job": "std.range", "with": {"end": "ten"}}}});
    let good = serde_json::json!({"stages": {"a": {"job": "std.range", "with": {"end": 10}}}});
    assert!(!validator.is_valid(&bad));
    assert!(validator.is_valid(&good));
}

#[test]
fn the_scaffold_of_plugins_new_builds_passes_its_test_and_is_listed() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold");
    let crate_folder = base.join("greet");
    let _ = std::fs::remove_dir_all(&crate_folder);
    std::fs::create_dir_all(&base).unwrap();

    let run = weft(&[
        "plugins",
        "new",
        "greet",
        "--path",
        &crate_folder.display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // The test plugins' target folder already holds the SDK's dependencies, built.
    let target = plugins::test_only()
        .misbehave
        .parent()
        .unwrap()
        .join("target");
    for command in ["build", "test"] {
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([command, "--quiet"])
            .current_dir(&crate_folder)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cargo {command} of the scaffold failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let listed = weft(&[
        "plugins",
        "show",
        "greet",
        "--plugin-path",
        &target.join("debug").display().to_string(),
    ]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed
            .stdout
            .contains("greet.greet\n  Greets someone by name."),
        "{}",
        listed.stdout
    );
}

#[test]
fn plugins_new_refuses_a_bad_name_and_a_used_folder() {
    let bad = weft(&["plugins", "new", "Bad Name"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .starts_with("error: invalid plugin name `Bad Name`"),
        "{}",
        bad.stderr
    );

    let used = weft(&["plugins", "new", "again", "--path", "workflows"]);
    assert_eq!(used.code, 2);
    assert!(
        used.stderr
            .starts_with("error: `workflows` already exists and is not empty"),
        "{}",
        used.stderr
    );
}

#[test]
fn a_shell_command_that_fails_once_passes_on_its_retry() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shell-retry");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let workflow = folder.join("flaky.yaml");
    std::fs::write(
        &workflow,
        format!(
            "stages:\n  flaky:\n    job: shell.run\n    retry: {{attempts: 2, delay: 1ms}}\n    with:\n      cwd: {}\n      argv: [sh, -c, 'echo x >> tries; [ $(wc -l < tries) -ge 2 ]']\noutputs:\n  code: ${{{{ stages.flaky.output.exit_code }}}}\n",
            serde_json::to_string(&folder.display().to_string()).unwrap()
        ),
    )
    .unwrap();

    let run = weft(&["run", "--quiet", &workflow.display().to_string()]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    let outputs: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outputs, serde_json::json!({"code": 0}));
    let tries = std::fs::read_to_string(folder.join("tries")).unwrap();
    assert_eq!(tries.lines().count(), 2);
}
