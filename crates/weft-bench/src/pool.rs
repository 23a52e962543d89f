//! The hand-written peer: the classic channel worker pool, calling the same plugin job
//! through `weft_host` as weft does.
//!
//! N threads share one `std::sync::mpsc` receiver behind a `Mutex`. Each takes an index,
//! builds the job's small JSON input, makes the FFI call (the host parses the output into
//! a `serde_json::Value`) and keeps the value for its slot. The main thread then places
//! every value in its slot by index and folds them: a sum for `echo`, a count of digests
//! for `sha256`. Only this work is timed, not loading the plugin.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_host::{CallOptions, CancelFlag, Job, LogLevel};

/// The options of the hidden `pool` command.
#[derive(Debug, clap::Args)]
pub struct PoolArgs {
    /// The plugin library holding the job.
    #[arg(long)]
    pub library: PathBuf,

    /// The job: `echo` (input `{value: i}`) or `sha256` (input `{path: DIR/fI}`).
    #[arg(long)]
    pub job: String,

    /// How many jobs.
    #[arg(long)]
    pub count: usize,

    /// The folder of the files to hash.
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// Threads of the pool (default: the available cores).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// Runs the pool and returns how long the jobs and the fan-in took.
pub fn run(args: &PoolArgs) -> Result<Duration, Box<dyn Error>> {
    let plugin = weft_host::load(&args.library)?;
    let job = plugin
        .jobs
        .get(&args.job)
        .ok_or_else(|| format!("the plugin has no job `{}`", args.job))?;
    let workers = args
        .workers
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, usize::from));
    let dir = args.dir.clone().unwrap_or_default();

    let start = Instant::now();

    let (sender, receiver) = mpsc::channel::<usize>();
    let receiver = Mutex::new(receiver);
    let done: Vec<Result<Vec<(usize, Value)>, String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| work(job, &receiver, &dir)))
            .collect();
        for index in 0..args.count {
            sender.send(index).expect("the workers are running");
        }
        drop(sender);
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a worker panicked".into()))
            })
            .collect()
    });

    let mut slots = vec![Value::Null; args.count];
    for outputs in done {
        for (index, value) in outputs? {
            slots[index] = value;
        }
    }
    let folded = fold(&args.job, &slots)?;

    let elapsed = start.elapsed();
    if folded != expected(&args.job, args.count) {
        return Err(format!("the fan-in gave {folded}, not the expected value").into());
    }
    Ok(elapsed)
}

/// One worker: takes indices until the channel closes.
fn work(
    job: &Job,
    receiver: &Mutex<Receiver<usize>>,
    dir: &std::path::Path,
) -> Result<Vec<(usize, Value)>, String> {
    let cancel = CancelFlag::new();
    let log = |_: LogLevel, _: &str| {};
    let mut outputs = Vec::new();

    loop {
        let next = receiver
            .lock()
            .map_err(|_| "the channel lock is poisoned")?
            .recv();
        let Ok(index) = next else {
            return Ok(outputs);
        };

        let input = if job.name == "sha256" {
            json!({ "path": dir.join(format!("f{index}")) })
        } else {
            json!({ "value": index })
        };
        let input = serde_json::to_vec(&input).map_err(|error| error.to_string())?;
        let options = CallOptions {
            cancel: &cancel,
            timeout: None,
            grace: Duration::from_secs(10),
            attempt: 1,
            run_id: "pool",
            stage_id: "pool",
            index: Some(index as u64),
            log: &log,
        };
        let output = job
            .call(&input, &options)
            .map_err(|failure| format!("job {index} failed: {}", failure.message))?;
        outputs.push((index, output));
    }
}

/// The fan-in: the sum of the echoed numbers, or the number of digests.
fn fold(job: &str, slots: &[Value]) -> Result<u64, String> {
    if job == "sha256" {
        return Ok(slots
            .iter()
            .filter(|slot| slot["sha256"].is_string())
            .count() as u64);
    }
    slots
        .iter()
        .map(|slot| {
            slot.as_u64()
                .ok_or_else(|| format!("`{slot}` is not a number"))
        })
        .sum()
}

/// What the fan-in of `count` jobs must give.
fn expected(job: &str, count: usize) -> u64 {
    let count = count as u64;
    if job == "sha256" {
        count
    } else {
        count * count.saturating_sub(1) / 2
    }
}
