//! The floor under the cancellation benchmark: threads waiting on one cancel flag, woken by
//! it, with no engine around them.
//!
//! N threads wait on the same `weft_host::CancelFlag` that weft's sleepers wait on; once all
//! are waiting, the flag is set, and the time runs until every thread has returned from its
//! wait and said so on a channel. This is what waking N blocked threads costs the machine,
//! whatever the engine does.

use std::error::Error;
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use weft_host::CancelFlag;

/// The options of the hidden `wake` command.
#[derive(Debug, clap::Args)]
pub struct WakeArgs {
    /// How many threads wait.
    #[arg(long)]
    pub threads: usize,
}

/// Runs the measurement; returns the time from setting the flag to the last thread back.
pub fn run(args: &WakeArgs) -> Result<Duration, Box<dyn Error>> {
    let flag = Arc::new(CancelFlag::new());
    let ready = Arc::new(Barrier::new(args.threads + 1));
    let (done, returned) = mpsc::channel();
    let mut threads = Vec::with_capacity(args.threads);
    for _ in 0..args.threads {
        let (flag, ready, done) = (flag.clone(), ready.clone(), done.clone());
        threads.push(
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    ready.wait();
                    let _ = done.send(flag.wait(Duration::from_secs(60)));
                })?,
        );
    }
    drop(done);
    ready.wait();
    // Time for every thread to go from the barrier into its wait.
    thread::sleep(Duration::from_millis(200));

    let start = Instant::now();
    flag.cancel();
    for _ in 0..args.threads {
        if !returned.recv()? {
            return Err("a thread's wait ended without the flag".into());
        }
    }
    let elapsed = start.elapsed();
    for thread in threads {
        let _ = thread.join();
    }
    Ok(elapsed)
}
