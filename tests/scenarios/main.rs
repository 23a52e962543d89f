//! The scheduler's scenarios, one module per behaviour of a run (execution.md): each runs a
//! workflow from `tests/fixtures/scenarios` through the `weft` binary and checks its exit
//! code, its outputs on stdout and its events file. `invariants` runs random graphs through
//! the library instead, and checks what must hold of every run.

#[path = "../common/mod.rs"]
mod common;
#[expect(
    dead_code,
    reason = "only `misbehave` is used here of the test-only plugins"
)]
#[path = "../common/plugins.rs"]
mod plugins;
mod support;

mod abandonment;
mod cancelled_jobs;
mod empty_fan_out;
mod events_file;
mod fail_fast;
mod fan_in_order;
mod inputs;
mod invariants;
mod job_timeout;
mod large_fan_out;
mod max_parallel;
mod on_error_continue;
mod on_error_finish;
mod panicking_job;
mod retries;
mod run_timeout;
mod signals;
