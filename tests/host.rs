//! The host's defences: plugins that panic, break the ABI, return too much, or were built
//! for another ABI are refused or survived, and the engine keeps working.

#[path = "common/plugins.rs"]
mod plugins;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weft_host::{
    CallOptions, CancelFlag, Catalog, Failure, FailureKind, LoadError, Plugin, SearchPath,
};

fn only(folder: &Path) -> Catalog {
    Catalog::discover(&SearchPath {
        folders: vec![folder.to_owned()],
        ..SearchPath::default()
    })
}

fn plugin(folder: &Path, name: &str) -> Arc<Plugin> {
    let catalog = only(folder);
    catalog
        .plugins
        .get(name)
        .unwrap_or_else(|| {
            panic!(
                "`{name}` should load from {}: {:?}",
                folder.display(),
                catalog.rejected
            )
        })
        .clone()
}

fn call(
    plugin: &Plugin,
    job: &str,
    input: serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    let cancel = CancelFlag::new();
    call_with(plugin, job, input, &cancel)
}

fn call_with(
    plugin: &Plugin,
    job: &str,
    input: serde_json::Value,
    cancel: &CancelFlag,
) -> Result<serde_json::Value, Failure> {
    let log = |_: weft_host::LogLevel, _: &str| {};
    let options = CallOptions {
        cancel,
        timeout: None,
        grace: Duration::from_secs(1),
        attempt: 1,
        run_id: "test",
        stage_id: "stage",
        index: None,
        log: &log,
    };
    let input = serde_json::to_vec(&input).unwrap();
    plugin.jobs[job].call(&input, &options)
}

#[test]
fn a_panicking_job_fails_with_the_panic_message_and_the_host_goes_on() {
    let misbehave = plugin(&plugins::test_only().misbehave, "misbehave");

    let failure = call(&misbehave, "panic", json!({"message": "out of cheese"})).unwrap_err();

    assert_eq!(failure.kind, FailureKind::Panicked);
    assert!(
        failure.message.contains("out of cheese"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("src/lib.rs"),
        "the location is given: {}",
        failure.message
    );
    assert!(!failure.retryable);
    let again = call(&misbehave, "panic", json!({"message": "twice"})).unwrap_err();
    assert!(again.message.contains("twice"));
    assert!(call(&misbehave, "chatty", json!(null)).is_ok());
}

#[test]
fn a_job_called_from_many_threads_at_once_sees_them_all() {
    let misbehave = plugin(&plugins::test_only().misbehave, "misbehave");

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let misbehave = misbehave.clone();
            std::thread::spawn(move || call(&misbehave, "concurrency", json!({"millis": 200})))
        })
        .collect();
    let outputs: Vec<_> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap().unwrap())
        .collect();

    let most = outputs
        .iter()
        .map(|output| output["most"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        most >= 2,
        "calls should overlap, saw at most {most} at once"
    );
}

#[test]
fn an_output_over_the_limit_is_refused_without_copying_it() {
    let misbehave = plugin(&plugins::test_only().misbehave, "misbehave");

    let failure = call(&misbehave, "huge", json!({"mebibytes": 100})).unwrap_err();

    assert_eq!(failure.kind, FailureKind::InvalidOutput);
    assert_eq!(
        failure.message,
        "the job's output is 100.0 MiB, more than the limit of 64 MiB"
    );
}

#[test]
fn a_cancelled_job_stops_at_its_next_check() {
    let misbehave = plugin(&plugins::test_only().misbehave, "misbehave");
    let cancel = Arc::new(CancelFlag::new());
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            cancel.cancel();
        })
    };

    let failure = call_with(&misbehave, "spin", json!(null), &cancel).unwrap_err();

    canceller.join().unwrap();
    assert_eq!(failure.kind, FailureKind::Cancelled);
}

#[test]
fn outputs_that_break_the_abi_are_reported_not_trusted() {
    let raw = plugin(&plugins::test_only().raw, "raw");

    let cases = [
        (
            "invalid_utf8",
            "the job's output is not UTF-8: invalid byte at offset 1",
        ),
        (
            "invalid_json",
            "the job's output is not JSON: key must be a string at line 1 column 2",
        ),
        (
            "no_output",
            "the job reported success but handed back no output",
        ),
        (
            "unknown_status",
            "the job returned the unknown status code 77",
        ),
    ];
    for (job, message) in cases {
        let failure = call(&raw, job, json!(null)).unwrap_err();
        assert_eq!(
            (failure.kind, failure.message.as_str()),
            (FailureKind::InvalidOutput, message)
        );
    }
}

#[test]
fn a_library_built_for_another_abi_is_refused_naming_the_file_and_both_versions() {
    let folder = &plugins::test_only().wrong_abi;

    let catalog = only(folder);

    assert!(catalog.plugins.is_empty());
    let [rejected] = catalog.rejected.as_slice() else {
        panic!("one rejected library expected: {:?}", catalog.rejected);
    };
    assert!(matches!(
        rejected.error,
        LoadError::AbiMajor {
            found: 2,
            expected: 1,
            ..
        }
    ));
    let message = rejected.error.to_string();
    assert!(message.contains("libweft_test_raw.so"), "{message}");
    assert!(
        message.contains("was built for plugin ABI 2.0, but this weft loads ABI 1.x"),
        "{message}"
    );
}

#[test]
fn a_library_with_the_wrong_magic_is_refused_naming_what_it_found() {
    let catalog = only(&plugins::test_only().wrong_magic);

    let [rejected] = catalog.rejected.as_slice() else {
        panic!("one rejected library expected: {:?}", catalog.rejected);
    };
    let message = rejected.error.to_string();
    assert!(message.contains("libweft_test_raw.so"), "{message}");
    assert!(
        message.contains(
            "starts with 0x0123456789abcdef, expected the magic number 0x47554c5054464557"
        ),
        "{message}"
    );
}

#[test]
fn files_that_are_not_plugins_are_listed_and_a_folder_named_twice_counts_once() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mixed-plugin-folder");
    std::fs::create_dir_all(&folder).unwrap();
    let library = format!("libweft_test_misbehave.{}", std::env::consts::DLL_EXTENSION);
    std::fs::copy(
        plugins::test_only().misbehave.join(&library),
        folder.join(&library),
    )
    .unwrap();
    std::fs::write(
        folder.join(format!("libjunk.{}", std::env::consts::DLL_EXTENSION)),
        "not a library",
    )
    .unwrap();
    std::fs::write(folder.join("notes.txt"), "ignored: not a library name").unwrap();

    let catalog = Catalog::discover(&SearchPath {
        folders: vec![folder.clone(), folder.join("."), folder.clone()],
        ..SearchPath::default()
    });

    assert_eq!(catalog.plugins.keys().collect::<Vec<_>>(), ["misbehave"]);
    assert!(catalog.conflicts.is_empty(), "{:?}", catalog.conflicts);
    let [rejected] = catalog.rejected.as_slice() else {
        panic!("one rejected file expected: {:?}", catalog.rejected);
    };
    assert!(
        rejected
            .path
            .ends_with(format!("libjunk.{}", std::env::consts::DLL_EXTENSION))
    );
    let LoadError::Open { reason, .. } = &rejected.error else {
        panic!("{:?}", rejected.error);
    };
    // The loader's own words, not only the name of the call that failed.
    assert!(reason.contains("libjunk"), "{reason}");
}

#[test]
fn two_files_declaring_one_plugin_are_a_conflict_naming_both() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conflicting-plugins");
    let library = format!("libweft_test_misbehave.{}", std::env::consts::DLL_EXTENSION);
    let mut folders = Vec::new();
    for copy in ["one", "two"] {
        let folder = base.join(copy);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(
            plugins::test_only().misbehave.join(&library),
            folder.join(&library),
        )
        .unwrap();
        folders.push(folder);
    }

    let catalog = Catalog::discover(&SearchPath {
        folders,
        ..SearchPath::default()
    });

    let conflict = catalog.conflict("misbehave").expect("a conflict");
    assert!(
        conflict
            .first
            .starts_with(base.join("one").canonicalize().unwrap())
    );
    assert!(
        conflict
            .second
            .starts_with(base.join("two").canonicalize().unwrap())
    );
}

#[test]
fn every_job_of_every_shipped_plugin_loads_and_answers() {
    let folder = plugins::shipped();
    let catalog = only(folder);
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = readme.display().to_string();
    let books = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/data/books");
    let books = books.display().to_string();

    let cases = [
        ("std", "echo", json!({"value": [1, "a"]}), json!([1, "a"])),
        ("std", "log", json!({"message": "hi"}), json!(null)),
        ("std", "sum", json!({"values": [1, 2, 3]}), json!(6)),
        ("std", "concat", json!({"values": ["a", "b"]}), json!("ab")),
        ("std", "range", json!({"end": 3}), json!([0, 1, 2])),
        (
            "std",
            "sleep",
            json!({"duration": "1ms", "value": 7}),
            json!(7),
        ),
        (
            "std",
            "fail",
            json!({"message": "no", "until_attempt": 1}),
            json!(null),
        ),
        (
            "std",
            "pick",
            json!({"value": {"a": [5, 6]}, "path": "a.1"}),
            json!(6),
        ),
        (
            "std",
            "merge",
            json!({"values": [{"a": 1}, {"a": 2, "b": 3}]}),
            json!({"a": 2, "b": 3}),
        ),
        (
            "text",
            "count_words",
            json!({"path": readme.clone()}),
            json!(null),
        ),
        ("text", "read", json!({"path": readme.clone()}), json!(null)),
        (
            "text",
            "list_files",
            json!({"dir": books, "glob": "*.txt"}),
            json!(null),
        ),
        (
            "hash",
            "sha256",
            json!({"text": "abc"}),
            json!({"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}),
        ),
        (
            "shell",
            "run",
            json!({"argv": ["printf", "%s", "hi"]}),
            json!({"exit_code": 0, "stdout": "hi", "stderr": ""}),
        ),
    ];

    for (plugin_name, job, input, expected) in cases {
        let plugin = catalog
            .plugins
            .get(plugin_name)
            .unwrap_or_else(|| panic!("`{plugin_name}` should load: {:?}", catalog.rejected));
        let output = call(plugin, job, input)
            .unwrap_or_else(|failure| panic!("{plugin_name}.{job} failed: {failure:?}"));
        if !expected.is_null() {
            assert_eq!(output, expected, "{plugin_name}.{job}");
        }
    }
    for plugin in catalog.plugins.values() {
        assert!(!plugin.jobs.is_empty(), "{} has jobs", plugin.name);
    }
    assert_eq!(
        catalog.plugins.keys().collect::<Vec<_>>(),
        ["hash", "shell", "std", "text"]
    );
}
