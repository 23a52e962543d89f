//! Every example in `workflows/` runs and gives the result its header documents.

mod common;
#[path = "common/plugins.rs"]
#[expect(dead_code, reason = "the examples use the shipped plugins only")]
mod plugins;

use serde_json::{Value, json};

/// Runs an example and returns its exit code and its outputs.
fn run(example: &str) -> (i32, Value, String) {
    plugins::shipped();
    let output = common::weft(&["run", &format!("workflows/{example}.yaml"), "--quiet"]);
    let outputs = serde_json::from_str(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{example}: stdout is not JSON ({error}):\n{}\n{}",
            output.stdout, output.stderr
        )
    });
    (output.code, outputs, output.stderr)
}

#[test]
fn wordcount_counts_the_books_as_wc_does() {
    let (code, outputs, stderr) = run("wordcount");

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outputs["files"], 5);
    assert_eq!(outputs["words"], 1509);
    assert_eq!(outputs["lines"], 135);
    assert_eq!(outputs["bytes"], 8110);
    assert_eq!(
        outputs["top_words"],
        json!([{"key": "that", "count": 16}, {"key": "with", "count": 11},
               {"key": "they", "count": 9}, {"key": "starter", "count": 8},
               {"key": "them", "count": 7}])
    );
    assert_eq!(
        outputs["per_file"][0],
        json!(["workflows/data/books/lighthouse.txt", 311])
    );
}

#[test]
fn matrix_builds_six_combinations_in_order_and_hashes_each() {
    let (code, outputs, stderr) = run("matrix");

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outputs["jobs"], 6);
    assert_eq!(outputs["builds"][0], "weft-linux-debug-stable");
    assert_eq!(outputs["builds"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        outputs["fingerprints"][0],
        "b8ecfa7b17f1952f011c9219f2ea61a69a250578abf1e28ca811f568782517bc"
    );
}

#[test]
fn shell_pipeline_pipes_one_stage_into_the_next() {
    let (code, outputs, stderr) = run("shell-pipeline");

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outputs["inventory"], json!({"files": 5, "bytes": 8110}));
    assert_eq!(
        outputs["unique_words"],
        json!(["apple", "cherry", "fig", "pear", "plum"])
    );
    assert_eq!(outputs["unique_count"], 5);
    assert_eq!(outputs["greeting_bytes"], 10);
    let greeting = outputs["greeting"].as_str().unwrap_or_default();
    assert!(
        greeting.ends_with("; {{ braces }} stay as typed"),
        "{greeting}"
    );
}

#[test]
fn retry_succeeds_after_retries_and_tolerates_a_timeout() {
    let (code, outputs, stderr) = run("retry");

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        outputs,
        json!({"flaky_service": "succeeded", "lock": "succeeded", "slow_but_ok": "made it",
               "too_slow": null, "too_slow_status": "succeeded"})
    );
}

#[test]
fn hashing_folds_a_thousand_digests_into_the_documented_root() {
    let (code, outputs, stderr) = run("hashing");

    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        outputs,
        json!({
            "items": 1000,
            "first": "dc79bc521a7815278626a102fcba7148c0c3ebf2ec715f89f8b6f79f8fb559e6",
            "root": "59c8164bc86782206b3123eb8e03930a9162d84c69495433673601dcc2b6677d"
        })
    );
}

#[test]
fn fail_fast_cancels_the_downloads_and_still_runs_the_cleanup() {
    let (code, outputs, stderr) = run("fail-fast");

    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        outputs,
        json!({"crash": "failed", "downloads": "cancelled", "publish": "cancelled",
               "download_jobs": ["cancelled", "cancelled", "cancelled", "cancelled"]})
    );
}

#[test]
fn continue_on_failure_skips_only_what_depends_on_the_failure() {
    let (code, outputs, stderr) = run("continue-on-failure");

    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        outputs,
        json!({"healthy": ["ams", "fra", "iad", "sfo", "nrt", "gru"], "down": ["lhr", "syd"],
               "synced": ["ams", "fra", "sfo", "nrt", "gru"], "sync": "succeeded",
               "docs": "failed", "publish_docs": "skipped"})
    );
}

#[test]
fn every_example_has_a_test_here() {
    let source = include_str!("examples.rs");
    let mut examples: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
    examples.sort();

    for example in examples {
        assert!(
            source.contains(&format!("run(\"{example}\")")),
            "workflows/{example}.yaml has no test in tests/examples.rs"
        );
    }
}
