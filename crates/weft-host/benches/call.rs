//! The cost of one job call through the ABI, and of the cancellation check.
//!
//! `cargo bench -p weft-host` builds the `std` plugin in release mode first if it is missing.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use weft_host::{CallOptions, CancelFlag, LogLevel};

/// The release build of the `std` plugin, built on demand.
fn std_plugin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let library = root
        .join("target/release")
        .join(format!("libweft_std.{}", std::env::consts::DLL_EXTENSION));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "weft-std"])
        .status()
        .expect("cargo should start");
    assert!(status.success(), "the std plugin should build");
    library
}

fn calls(c: &mut Criterion) {
    let plugin = weft_host::load(&std_plugin()).expect("the std plugin loads");
    let echo = &plugin.jobs["echo"];
    let cancel = CancelFlag::new();
    let log = |_: LogLevel, _: &str| {};
    let options = CallOptions {
        cancel: &cancel,
        timeout: None,
        grace: Duration::from_secs(10),
        attempt: 1,
        run_id: "bench",
        stage_id: "echo",
        index: Some(0),
        log: &log,
    };
    let input = br#"{"value":{"id":42,"name":"item-42","tags":["a","b"]}}"#;

    c.bench_function(
        "call std.echo through the ABI (small JSON in and out)",
        |b| {
            b.iter(|| echo.call(black_box(input), &options).expect("echo answers"));
        },
    );

    c.bench_function("cancellation flag check", |b| {
        b.iter(|| black_box(&cancel).is_cancelled());
    });
}

criterion_group!(benches, calls);
criterion_main!(benches);
