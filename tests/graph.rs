//! `weft graph`: the DAG of each example in DOT and Mermaid, fan-out stages and order-only
//! edges marked, and every example's DOT accepted by Graphviz.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use crate::common::{Output, weft};

/// `weft graph ARGS...`, which must succeed quietly.
fn graph(args: &[&str]) -> Output {
    let mut all = vec!["graph"];
    all.extend_from_slice(args);
    let output = weft(&all);

    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stderr.is_empty(), "{}", output.stderr);
    output
}

/// The example workflows, as relative paths, sorted by name.
fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("workflows"))
        .expect("the examples folder should list")
        .map(|entry| entry.expect("a directory entry should read").file_name())
        .map(|name| Path::new("workflows").join(name))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example workflow found");
    files
}

/// The DOT line that declares a node, or an edge between two nodes.
fn line_of<'a>(dot: &'a str, start: &str) -> &'a str {
    dot.lines()
        .map(str::trim)
        .find(|line| line.starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?} in:\n{dot}"))
}

#[test]
fn dot_of_wordcount_draws_the_fan_out_stage_as_a_3d_box_and_the_order_edge_dashed() {
    let output = graph(&["workflows/wordcount.yaml"]);
    let dot = &output.stdout;

    assert!(line_of(dot, r#""count" ["#).contains("shape=box3d"));
    for single in ["list", "words", "lines", "bytes", "tidy"] {
        let node = line_of(dot, &format!(r#""{single}" ["#));
        assert!(!node.contains("box3d"), "{node}");
    }
    assert!(line_of(dot, r#""count" -> "tidy""#).contains("style=dashed"));
    assert!(!line_of(dot, r#""list" -> "count""#).contains("dashed"));
    assert!(!line_of(dot, r#""count" -> "words""#).contains("dashed"));
    insta::assert_snapshot!("wordcount_dot", dot);
}

#[test]
fn mermaid_of_fail_fast_draws_fan_out_as_a_subroutine_and_needs_as_dotted_links() {
    let output = graph(&["workflows/fail-fast.yaml", "--format", "mermaid"]);
    let mermaid = &output.stdout;

    assert!(mermaid.contains("flowchart LR"), "{mermaid}");
    assert!(mermaid.contains(r#"downloads[["#), "{mermaid}");
    assert!(mermaid.contains("warmup -.-> crash"), "{mermaid}");
    assert!(mermaid.contains("crash --> cleanup"), "{mermaid}");
    insta::assert_snapshot!("fail_fast_mermaid", mermaid);
}

#[test]
fn dot_of_continue_on_failure_shows_two_branches_with_data_and_order_edges() {
    let output = graph(&["workflows/continue-on-failure.yaml"]);
    let dot = &output.stdout;

    assert!(line_of(dot, r#""probes" ["#).contains("shape=box3d"));
    assert!(line_of(dot, r#""sync" ["#).contains("shape=box3d"));
    assert!(line_of(dot, r#""build_docs" -> "publish_docs""#).contains("style=dashed"));
    insta::assert_snapshot!("continue_on_failure_dot", dot);
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "a skipped render check says so in the test output"
)]
fn every_example_dot_renders_to_svg_with_graphviz() {
    let dot_found = Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !dot_found {
        eprintln!("skipped: `dot` (Graphviz) is not on PATH; the DOT render check did not run");
        return;
    }

    for example in examples() {
        let file = example.to_string_lossy();
        let output = graph(&[&file]);

        let svg = render_svg(&output.stdout);

        assert!(svg.contains("<svg"), "{file}: dot printed no SVG:\n{svg}");
    }
}

/// Pipes DOT text through `dot -Tsvg` and returns the SVG.
fn render_svg(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dot should start");
    let mut stdin = child.stdin.take().expect("dot's stdin is piped");
    let text = dot.to_owned();
    let writer = thread::spawn(move || stdin.write_all(text.as_bytes()));

    let output = child.wait_with_output().expect("dot should finish");
    writer
        .join()
        .expect("the writer should not panic")
        .expect("dot should read its input");
    assert!(
        output.status.success(),
        "dot -Tsvg failed on:\n{dot}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn graph_of_an_invalid_file_exits_2_and_prints_its_errors() {
    let output = weft(&["graph", "tests/fixtures/invalid/cycle.yaml"]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    assert!(
        output
            .stderr
            .starts_with("error: stages depend on each other in a cycle: a -> b -> c -> a\n"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("--> tests/fixtures/invalid/cycle.yaml:6:3"),
        "{}",
        output.stderr
    );
}

#[test]
fn graph_of_a_file_with_several_errors_prints_them_all() {
    let output = weft(&[
        "graph",
        "--format",
        "mermaid",
        "tests/fixtures/invalid/several_errors.yaml",
    ]);

    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    let errors = output
        .stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .count();
    assert!(errors >= 5, "{}", output.stderr);
}
