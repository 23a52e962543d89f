//! Running one contender once: its wall time (or the time it reports), and its peak memory.

use std::error::Error;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// How a contender's time is taken.
pub enum Measure {
    /// The wall time of the process, from start to exit.
    Wall,
    /// The nanoseconds the process prints on stdout (the hand-written pool times itself).
    Reported,
    /// From the failing job's `job_finished` event to the last sleeper's, in the events file.
    CancelLatency(PathBuf),
}

/// One program doing a benchmark's work.
pub struct Contender {
    /// Its name in the table.
    pub tool: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// How its time is taken.
    pub measure: Measure,
}

impl Contender {
    /// A contender timed by its wall time.
    pub fn wall(tool: &str, program: &Path, args: Vec<OsString>) -> Self {
        Self {
            tool: tool.to_owned(),
            program: program.to_owned(),
            args,
            measure: Measure::Wall,
        }
    }

    /// The same contender, timed another way.
    pub fn measured(self, measure: Measure) -> Self {
        Self { measure, ..self }
    }
}

/// One run of a contender.
#[derive(Clone, Copy)]
pub struct Sample {
    /// Seconds.
    pub secs: f64,
    /// Peak resident memory in KiB, when `/usr/bin/time` could tell.
    pub rss_kib: Option<u64>,
}

/// Runs `contender` once, under `/usr/bin/time -f %M` when `time` is given.
pub fn run_once(
    contender: &Contender,
    time: Option<&Path>,
    scratch: &Path,
) -> Result<Sample, Box<dyn Error>> {
    let rss_file = scratch.join("rss.txt");
    let mut command = match time {
        Some(time) => {
            let mut command = Command::new(time);
            command
                .args(["-f", "%M", "-o"])
                .arg(&rss_file)
                .arg(&contender.program);
            command
        }
        None => Command::new(&contender.program),
    };
    command
        .args(&contender.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let start = Instant::now();
    let output = command.output()?;
    let wall = start.elapsed().as_secs_f64();

    let cancelled = matches!(contender.measure, Measure::CancelLatency(_));
    if !output.status.success() && !cancelled {
        return Err(format!(
            "`{}` failed ({}): {}",
            contender.tool,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }

    let rss_kib = time.and_then(|_| {
        let text = fs::read_to_string(&rss_file).ok()?;
        text.lines().last()?.trim().parse().ok()
    });
    let secs = match &contender.measure {
        Measure::Wall => wall,
        Measure::Reported => {
            let nanos: f64 = String::from_utf8_lossy(&output.stdout).trim().parse()?;
            nanos / 1e9
        }
        Measure::CancelLatency(events) => cancel_latency(&fs::read_to_string(events)?)?,
    };
    Ok(Sample { secs, rss_kib })
}

/// Seconds from the `job_finished` of stage `boom` to the last `job_finished` of a sleeper.
pub fn cancel_latency(events: &str) -> Result<f64, Box<dyn Error>> {
    let mut failed = None;
    let mut last_sleeper: Option<f64> = None;
    for line in events.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        if event["kind"] != "job_finished" {
            continue;
        }
        let ts = event["ts"].as_str().ok_or("an event without `ts`")?;
        let at = seconds_of_day(ts).ok_or_else(|| format!("`{ts}` is not an RFC 3339 time"))?;
        match event["stage"].as_str() {
            Some("boom") => failed = Some(at),
            Some("sleepers") if event["status"] != "cancelled" => {
                return Err("a sleeper was not cancelled: the failure came too late".into());
            }
            Some("sleepers") => last_sleeper = Some(last_sleeper.map_or(at, |last| last.max(at))),
            _ => {}
        }
    }
    let failed = failed.ok_or("the events have no `job_finished` of the failing job")?;
    let last = last_sleeper.ok_or("the events have no `job_finished` of a sleeper")?;
    let mut latency = last - failed;
    if latency < -43_200.0 {
        latency += 86_400.0; // the run crossed midnight
    }
    Ok(latency)
}

/// The seconds since midnight (UTC) of `2026-12-03T17:10:18.532428Z`.
fn seconds_of_day(ts: &str) -> Option<f64> {
    let time = ts.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// `name` on `PATH`, if it is there.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_latency_runs_from_the_failure_to_the_last_cancelled_sleeper() {
        let events = [
            r#"{"kind":"job_started","ts":"2026-12-03T17:10:17.000000Z","stage":"sleepers"}"#,
            r#"{"kind":"job_finished","ts":"2026-12-03T17:10:18.500000Z","stage":"boom"}"#,
            r#"{"kind":"job_finished","ts":"2026-12-03T17:10:18.500250Z","stage":"sleepers","status":"cancelled"}"#,
            r#"{"kind":"job_finished","ts":"2026-12-03T17:10:18.501000Z","stage":"sleepers","status":"cancelled"}"#,
            r#"{"kind":"job_finished","ts":"2026-12-03T17:10:18.500500Z","stage":"sleepers","status":"cancelled"}"#,
        ]
        .join("\n");

        let latency = cancel_latency(&events).unwrap();

        assert!((latency - 0.001).abs() < 1e-9, "{latency}");
    }

    #[test]
    fn cancel_latency_refuses_a_sleeper_that_finished_normally() {
        let events = [
            r#"{"kind":"job_finished","ts":"2026-12-03T17:10:18.500000Z","stage":"boom"}"#,
            r#"{"kind":"job_finished","ts":"2026-12-03T17:11:18.500000Z","stage":"sleepers","status":"succeeded"}"#,
        ]
        .join("\n");

        assert!(cancel_latency(&events).is_err());
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    }
}
