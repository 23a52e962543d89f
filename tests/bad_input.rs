//! Hostile inputs to `weft validate`: huge, explosive, deeply nested, badly encoded or not
//! a file at all. Each must end quickly with exit code 2 and a message naming the file,
//! never a panic or a hang (the helper fails a run that takes more than 20 seconds).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use crate::common::{Output, weft};

/// A fresh folder for one test, under Cargo's temporary folder for integration tests.
fn scratch(test: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bad_input")
        .join(test);
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).expect("the scratch folder should be created");
    folder
}

/// Writes `bytes` to `name` in the test's scratch folder and returns the file's path.
fn write(test: &str, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = scratch(test).join(name);
    fs::write(&path, bytes).expect("the input file should be written");
    path
}

/// Runs `weft validate PATH` and checks what every refused input has in common: exit code 2,
/// an `error:` line, the file named, no panic, nothing on stdout.
fn refused(path: &Path) -> Output {
    let output = weft(&[Path::new("validate"), path]);

    let name = path.display().to_string();
    assert_eq!(output.code, 2, "{name}: {output:?}");
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    assert!(
        output.stderr.lines().any(|line| line.starts_with("error:")),
        "no `error:` line:\n{}",
        output.stderr
    );
    assert!(
        output.stderr.contains(&name),
        "the file is not named:\n{}",
        output.stderr
    );
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    output
}

fn assert_contains(output: &Output, parts: &[&str]) {
    for part in parts {
        assert!(
            output.stderr.contains(part),
            "expected {part:?} in:\n{}",
            output.stderr
        );
    }
}

const VALID_START: &str =
    "version: 1\nname: hostile\nstages:\n  hello:\n    job: std.echo\n    with: {value: hi}\n";

/// Writes a file of about 50 MB: `head`, then `line` over and over, then `tail`.
fn fifty_megabytes(test: &str, head: &str, line: &str, tail: &str) -> PathBuf {
    let path = scratch(test).join("huge.yaml");
    let write = || -> std::io::Result<()> {
        let mut file = BufWriter::new(fs::File::create(&path)?);
        file.write_all(head.as_bytes())?;
        for _ in 0..50 * 1024 * 1024 / line.len() {
            file.write_all(line.as_bytes())?;
        }
        file.write_all(tail.as_bytes())?;
        file.flush()
    };
    write().expect("the huge file should be written");
    path
}

#[test]
fn a_50_mb_file_with_a_huge_comment_is_refused_for_its_size() {
    let comment = format!("# {}\n", "x".repeat(1022));
    let path = fifty_megabytes("huge_comment", VALID_START, &comment, "");

    let output = refused(&path);

    assert_contains(&output, &["MiB; a workflow file may be at most 8 MiB"]);
    let _ = fs::remove_file(&path);
}

#[test]
fn a_50_mb_list_is_refused_for_its_size() {
    let item = format!("      - {}\n", "y".repeat(1016));
    let path = fifty_megabytes(
        "huge_list",
        "version: 1\nstages:\n  hello:\n    for_each:\n",
        &item,
        "    job: std.echo\n",
    );

    let output = refused(&path);

    assert_contains(&output, &["MiB; a workflow file may be at most 8 MiB"]);
    let _ = fs::remove_file(&path);
}

#[test]
fn an_alias_bomb_is_refused_before_it_expands() {
    // "Billion laughs": 10 levels of 10 aliases each, 10^10 values once expanded.
    let mut source = String::from("x-l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let alias = format!("*l{}", level - 1);
        let items = [alias.as_str(); 10].join(", ");
        let _ = writeln!(source, "x-l{level}: &l{level} [{items}]");
    }
    source.push_str("version: 1\nstages:\n  hello:\n    job: std.echo\n    with: {value: *l9}\n");
    let path = write("alias_bomb", "laughs.yaml", source);

    let output = refused(&path);

    assert_contains(&output, &["aliases expand to more than", "alias bomb"]);
}

#[test]
fn a_latin_1_byte_is_reported_as_not_utf_8_with_its_line() {
    let path = write(
        "latin_1",
        "latin1.yaml",
        b"version: 1\nname: cafe\ndescription: caf\xe9 au lait\nstages:\n  hello:\n    job: std.echo\n",
    );

    let output = refused(&path);

    assert_contains(
        &output,
        &["not UTF-8", "0xe9", ":3:", "save the file as UTF-8"],
    );
}

#[test]
fn an_empty_file_holds_no_workflow() {
    let path = write("empty", "empty.yaml", "");

    let output = refused(&path);

    assert_contains(&output, &["holds no workflow", "version: 1"]);
}

#[test]
fn a_file_of_comments_only_holds_no_workflow() {
    let path = write(
        "comments_only",
        "comments.yaml",
        "# version: 1\n# stages:\n#   hello: {job: std.echo}\n",
    );

    let output = refused(&path);

    assert_contains(&output, &["holds no workflow"]);
}

#[test]
fn a_directory_given_as_the_file_is_refused() {
    let folder = scratch("directory");

    let output = refused(&folder);

    assert_contains(&output, &["is a directory, not a workflow file"]);
}

#[test]
fn a_missing_file_is_refused() {
    let path = scratch("missing").join("nowhere.yaml");

    let output = refused(&path);

    assert_contains(&output, &["cannot read", "no such file"]);
}

#[test]
fn values_nested_10_000_deep_in_flow_style_are_refused() {
    let source = format!(
        "version: 1\nstages: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let path = write("deep_flow", "deep_flow.yaml", source);

    let output = refused(&path);

    assert_contains(&output, &["nested too deeply", ":2:"]);
}

#[test]
fn mappings_nested_10_000_deep_in_flow_style_are_refused() {
    let source = format!(
        "version: 1\nstages: {}x{}\n",
        "{a: ".repeat(10_000),
        "}".repeat(10_000)
    );
    let path = write("deep_flow_mappings", "deep_flow_mappings.yaml", source);

    let output = refused(&path);

    assert_contains(&output, &["nested too deeply", ":2:"]);
}

#[test]
fn values_nested_10_000_deep_in_block_style_are_refused() {
    // Compact block sequences: `- - - x` is a list in a list in a list, one level per dash.
    let source = format!("{}x\n", "- ".repeat(10_000));
    let path = write("deep_block", "deep_block.yaml", source);

    let output = refused(&path);

    assert_contains(&output, &["nested too deeply", ":1:"]);
}

#[test]
fn indented_mappings_nested_3_000_deep_are_refused() {
    // As deep as indentation allows under the size limit (10,000 levels would take 50 MB).
    let mut source = String::from("version: 1\nstages:\n");
    for depth in 1..=3_000 {
        let _ = writeln!(source, "{}k{depth}:", " ".repeat(depth));
    }
    let path = write("deep_block_mappings", "deep_block_mappings.yaml", source);

    let output = refused(&path);

    assert_contains(&output, &["nested too deeply"]);
}

#[test]
fn a_file_of_100_yaml_documents_is_refused() {
    let source: String = (0..100)
        .map(|at| format!("---\nversion: 1\nname: doc{at}\nstages:\n  hello:\n    job: std.echo\n"))
        .collect();
    let path = write("documents", "documents.yaml", source);

    let output = refused(&path);

    assert_contains(&output, &["more than one YAML document", "`---`"]);
}

#[test]
fn a_scalar_at_the_top_is_not_a_workflow() {
    let path = write("scalar", "scalar.yaml", "42\n");

    let output = refused(&path);

    assert_contains(&output, &["a workflow is a mapping, not a number", ":1:1"]);
}

#[test]
fn a_list_at_the_top_is_not_a_workflow() {
    let path = write(
        "list",
        "list.yaml",
        "- version: 1\n- stages: {hello: {job: std.echo}}\n",
    );

    let output = refused(&path);

    assert_contains(&output, &["a workflow is a mapping, not a list", ":1:1"]);
}
