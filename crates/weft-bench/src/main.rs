//! `weft-bench`: weft beside its peers on the same generated work.
//!
//! It builds the workspace in release mode, writes its inputs into a temporary folder,
//! runs weft and each peer in turn (weft, peer, weft, peer, ...) `--runs` times, and
//! prints a Markdown table of medians, ratios against weft and peak memory. A peer that
//! is not installed is skipped, saying so. See `docs/benchmarks.md` for the figures.

mod inputs;
mod measure;
mod pool;
mod wake;

use std::error::Error;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;

use clap::{Parser, Subcommand};

use crate::measure::{Contender, Measure, Sample};

/// A program's arguments, from anything an `OsString` can be made of.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$(std::ffi::OsString::from($arg)),*]
    };
}

/// Compares weft with a hand-written pool, xargs, GNU parallel and Go on the same work.
#[derive(Debug, Parser)]
#[command(name = "weft-bench", about)]
struct Cli {
    /// One run of small sizes, for CI: well under a minute.
    #[arg(long)]
    quick: bool,

    /// Interleaved runs of each contender; the table shows their median.
    #[arg(long, value_name = "N", default_value_t = 5)]
    runs: usize,

    #[command(subcommand)]
    command: Option<Internal>,
}

/// Commands `weft-bench` runs of itself.
#[derive(Debug, Subcommand)]
enum Internal {
    /// The hand-written channel pool; prints the nanoseconds it took.
    #[command(hide = true)]
    Pool(pool::PoolArgs),

    /// Threads woken by one cancel flag; prints the nanoseconds until the last is back.
    #[command(hide = true)]
    Wake(wake::WakeArgs),
}

/// The sizes of the work.
struct Sizes {
    fan_out: usize,
    hash_files: usize,
    hash_bytes: usize,
    shell: usize,
    graph: usize,
    cancel: usize,
}

const FULL: Sizes = Sizes {
    fan_out: 1_000_000,
    hash_files: 256,
    hash_bytes: 4 << 20,
    shell: 2_000,
    graph: 10_000,
    cancel: 1_000,
};

const QUICK: Sizes = Sizes {
    fan_out: 10_000,
    hash_files: 16,
    hash_bytes: 256 << 10,
    shell: 100,
    graph: 500,
    cancel: 100,
};

/// One benchmark: its contenders, weft first.
struct Bench {
    name: String,
    /// Jobs (or stages) in one run, for the per-item column.
    items: usize,
    /// The project's target, from the design notes.
    target: &'static str,
    contenders: Vec<Contender>,
}

/// The medians of one contender.
struct Row {
    bench: String,
    tool: String,
    median: f64,
    items: usize,
    ratio: Option<f64>,
    rss_kib: Option<u64>,
    target: &'static str,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Some(Internal::Pool(args)) => pool::run(args).and_then(print_nanos),
        Some(Internal::Wake(args)) => wake::run(args).and_then(print_nanos),
        None => compare(&cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr().lock(), "weft-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A line of progress on stderr.
fn note(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

fn print_nanos(elapsed: std::time::Duration) -> Result<(), Box<dyn Error>> {
    writeln!(io::stdout().lock(), "{}", elapsed.as_nanos())?;
    Ok(())
}

fn compare(cli: &Cli) -> Result<(), Box<dyn Error>> {
    let (sizes, runs) = if cli.quick {
        (QUICK, 1)
    } else {
        (FULL, cli.runs.max(1))
    };

    build()?;
    let release = std::env::current_exe()?
        .parent()
        .ok_or("the executable has no folder")?
        .to_owned();
    let weft = release.join("weft");
    let scratch = std::env::temp_dir().join(format!("weft-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;

    let outcome = prepare(&sizes, &release, &weft, &scratch).and_then(|benches| {
        let time = Path::new("/usr/bin/time");
        let time = time.is_file().then_some(time);
        if time.is_none() {
            note("/usr/bin/time is not installed: no peak memory");
        }
        let mut rows = Vec::new();
        for bench in &benches {
            note(&format!("running {} ({runs} runs)", bench.name));
            rows.extend(measure_bench(bench, runs, time, &scratch)?);
        }
        print_table(&rows)?;
        Ok(())
    });
    let _ = fs::remove_dir_all(&scratch);
    outcome
}

/// `cargo build --release --workspace`, with the cargo that runs us if there is one.
fn build() -> Result<(), Box<dyn Error>> {
    note("building the workspace (release)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--workspace", "--quiet"])
        .status()?;
    if !status.success() {
        return Err(format!("`cargo build --release --workspace` failed ({status})").into());
    }
    Ok(())
}

/// Writes the inputs and lists the benchmarks, skipping peers that are not installed.
fn prepare(
    sizes: &Sizes,
    release: &Path,
    weft: &Path,
    scratch: &Path,
) -> Result<Vec<Bench>, Box<dyn Error>> {
    let cores = thread::available_parallelism().map_or(1, usize::from);
    // The workspace build may have replaced our own executable: run the new one.
    let me = release.join(format!("weft-bench{}", std::env::consts::EXE_SUFFIX));
    let library = |name: &str| {
        release.join(format!(
            "libweft_{name}.{}",
            std::env::consts::DLL_EXTENSION
        ))
    };
    let xargs = measure::which("xargs");
    let parallel = measure::which("parallel");
    let mut benches = Vec::new();

    // 1. The no-op fan-out and fan-in.
    let fan_out = write(scratch, "fan-out.yaml", inputs::FAN_OUT)?;
    let n = sizes.fan_out;
    let mut contenders = vec![Contender::wall(
        "weft",
        weft,
        args!["run", "--quiet", &fan_out, "-i", format!("n={n}")],
    )];
    contenders.extend(pool_contenders(
        &me,
        args![
            "pool",
            "--library",
            &library("std"),
            "--job",
            "echo",
            "--count",
            n.to_string(),
        ],
    ));
    match go_pool(scratch)? {
        Some(binary) => contenders.push(
            Contender::wall(
                "go channel pool (in-process time)",
                &binary,
                args![n.to_string()],
            )
            .measured(Measure::Reported),
        ),
        None => note("skipping the Go channel pool: `go` is not on PATH"),
    }
    benches.push(Bench {
        name: format!("fan-out of {n} std.echo + std.sum"),
        items: n,
        target: "< 1 us a job; <= 2x the pool; < 200 MB",
        contenders,
    });

    // 2. CPU-bound hashing.
    let (count, bytes) = (sizes.hash_files, sizes.hash_bytes);
    note(&format!(
        "writing {count} files of {} KiB to hash",
        bytes >> 10
    ));
    let dir = scratch.join("hash");
    let list = inputs::files_to_hash(&dir, count, bytes)?;
    let hashing = write(scratch, "hash.yaml", &inputs::hashing(count, &dir))?;
    let mut contenders = vec![
        Contender::wall("weft", weft, args!["run", "--quiet", &hashing]),
        Contender::wall(
            "weft --workers 1",
            weft,
            args!["run", "--quiet", "--workers", "1", &hashing],
        ),
    ];
    contenders.extend(pool_contenders(
        &me,
        args![
            "pool",
            "--library",
            &library("hash"),
            "--job",
            "sha256",
            "--count",
            count.to_string(),
            "--dir",
            &dir,
        ],
    ));
    match &xargs {
        Some(xargs) => contenders.push(Contender::wall(
            &format!("xargs -P {cores} sha256sum"),
            xargs,
            args![
                "-a",
                &list,
                "-d",
                "\n",
                "-P",
                cores.to_string(),
                "-n",
                "1",
                "sha256sum",
            ],
        )),
        None => note("skipping xargs: it is not on PATH"),
    }
    benches.push(Bench {
        name: format!("sha256 of {count} files of {} KiB", bytes >> 10),
        items: count,
        target: "<= 1.03x the pool; speed-up >= 0.95 x cores",
        contenders,
    });

    // 3. Shell fan-out of `true`.
    let n = sizes.shell;
    let shell = write(scratch, "shell.yaml", &inputs::shell(n))?;
    let arg_list = write(scratch, "args.txt", &"x\n".repeat(n))?;
    let mut contenders = vec![Contender::wall(
        "weft",
        weft,
        args!["run", "--quiet", &shell],
    )];
    match &xargs {
        Some(xargs) => contenders.push(Contender::wall(
            "xargs -P 2 -n 1 true",
            xargs,
            args!["-a", &arg_list, "-P", "2", "-n", "1", "true"],
        )),
        None => note("skipping xargs: it is not on PATH"),
    }
    match &parallel {
        Some(parallel) => contenders.push(Contender::wall(
            "parallel -j 2 true",
            parallel,
            args!["-j", "2", "-a", &arg_list, "true"],
        )),
        None => note("skipping GNU parallel: `parallel` is not on PATH"),
    }
    benches.push(Bench {
        name: format!("{n} runs of `true`, 2 at a time"),
        items: n,
        target: "no slower than xargs -P 2",
        contenders,
    });

    // 4. Wide and deep graphs.
    let n = sizes.graph;
    for (shape, chain) in [("chain", true), ("wide", false)] {
        let file = write(scratch, &format!("{shape}.yaml"), &inputs::graph(n, chain))?;
        benches.push(Bench {
            name: format!("{shape} of {n} stages: validate"),
            items: n,
            target: "< 100 ms",
            contenders: vec![Contender::wall(
                "weft validate",
                weft,
                args!["validate", &file],
            )],
        });
        benches.push(Bench {
            name: format!("{shape} of {n} stages: run"),
            items: n,
            target: "< 1 s",
            contenders: vec![Contender::wall(
                "weft run",
                weft,
                args!["run", "--quiet", &file],
            )],
        });
    }

    // 5. Cancellation latency. The trigger sleeps on the waiting lane too: one more thread
    // than sleepers, or it would wait for a sleeper to finish.
    let n = sizes.cancel;
    let cancel = write(scratch, "cancel.yaml", &inputs::cancel(n, 500))?;
    let events = scratch.join("cancel.jsonl");
    benches.push(Bench {
        name: format!("cancel {n} running std.sleep: failure to last sleeper"),
        items: 1,
        target: "< 1 ms",
        contenders: vec![
            Contender::wall(
                "weft",
                weft,
                args![
                    "run",
                    "--quiet",
                    "--wait-workers",
                    (n + 1).to_string(),
                    "--events",
                    &events,
                    &cancel,
                ],
            )
            .measured(Measure::CancelLatency(events.clone())),
            Contender::wall(
                &format!("{n} bare threads woken by one flag (in-process time)"),
                &me,
                args!["wake", "--threads", n.to_string()],
            )
            .measured(Measure::Reported),
        ],
    });

    // 6. Start-up.
    let one = write(scratch, "one.yaml", inputs::ONE_STAGE)?;
    benches.push(Bench {
        name: "start-up: one std.echo stage".to_owned(),
        items: 1,
        target: "< 20 ms",
        contenders: vec![Contender::wall(
            "weft run",
            weft,
            args!["run", "--quiet", &one],
        )],
    });

    Ok(benches)
}

/// The hand-written pool twice: timed as weft is, from the start of its process to its exit
/// (starting up and loading the plugin included), and as it times itself, from before its
/// threads start to after the last result is in its slot.
fn pool_contenders(me: &Path, args: Vec<std::ffi::OsString>) -> [Contender; 2] {
    [
        Contender::wall("rust pool (mpsc, whole process)", me, args.clone()),
        Contender::wall("rust pool (mpsc, in-process time)", me, args).measured(Measure::Reported),
    ]
}

/// Writes `text` to `scratch/name`.
fn write(scratch: &Path, name: &str, text: &str) -> io::Result<PathBuf> {
    let path = scratch.join(name);
    fs::write(&path, text)?;
    Ok(path)
}

/// Builds the Go channel pool, if `go` is installed.
fn go_pool(scratch: &Path) -> Result<Option<PathBuf>, Box<dyn Error>> {
    let Some(go) = measure::which("go") else {
        return Ok(None);
    };
    let folder = scratch.join("go");
    fs::create_dir_all(&folder)?;
    let source = write(&folder, "main.go", inputs::GO_POOL)?;
    let binary = folder.join("pool");
    let status = Command::new(go)
        .current_dir(&folder)
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status()?;
    if !status.success() {
        return Err(format!("`go build` of the Go pool failed ({status})").into());
    }
    Ok(Some(binary))
}

/// Runs every contender of `bench` `runs` times, interleaved, and gives their medians.
fn measure_bench(
    bench: &Bench,
    runs: usize,
    time: Option<&Path>,
    scratch: &Path,
) -> Result<Vec<Row>, Box<dyn Error>> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); bench.contenders.len()];
    for _ in 0..runs {
        for (contender, samples) in bench.contenders.iter().zip(&mut samples) {
            samples.push(measure::run_once(contender, time, scratch)?);
        }
    }

    let medians: Vec<f64> = samples
        .iter()
        .map(|samples| measure::median(&mut samples.iter().map(|s| s.secs).collect::<Vec<_>>()))
        .collect();
    let base = medians[0];
    let compared = bench.contenders.len() > 1;
    Ok(bench
        .contenders
        .iter()
        .zip(&samples)
        .zip(&medians)
        .enumerate()
        .map(|(index, ((contender, samples), &median))| Row {
            bench: bench.name.clone(),
            tool: contender.tool.clone(),
            median,
            items: bench.items,
            ratio: compared.then(|| median / base),
            rss_kib: samples.iter().filter_map(|s| s.rss_kib).max(),
            target: if index == 0 { bench.target } else { "" },
        })
        .collect())
}

/// A duration, in the unit that suits it.
fn human(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.1} ms", secs * 1e3)
    } else if secs >= 1e-6 {
        format!("{:.2} µs", secs * 1e6)
    } else {
        format!("{:.0} ns", secs * 1e9)
    }
}

fn print_table(rows: &[Row]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "| benchmark | tool | median | per item | vs weft | peak RSS | target |"
    )?;
    writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | --- |")?;
    let mut last = "";
    for row in rows {
        let bench = if row.bench == last {
            ""
        } else {
            row.bench.as_str()
        };
        last = &row.bench;
        let per_item = if row.items > 1 {
            human(row.median / row.items as f64)
        } else {
            "-".into()
        };
        let ratio = row.ratio.map_or("-".into(), |ratio| format!("{ratio:.2}x"));
        let rss = row.rss_kib.map_or("-".into(), |kib| {
            format!("{:.0} MB", kib as f64 * 1024.0 / 1e6)
        });
        writeln!(
            out,
            "| {bench} | {} | {} | {per_item} | {ratio} | {rss} | {} |",
            row.tool,
            human(row.median),
            row.target
        )?;
    }
    Ok(())
}
