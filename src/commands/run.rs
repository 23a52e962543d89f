//! `weft run`: validate, resolve inputs, run on the shared pool, print the outputs.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use weft_runtime::{
    CancelReason, Engine, EventSink, EventsFile, PoolConfig, Prepared, RunControl, RunReport,
    RunRequest, RunStatus,
};
use weft_spec::diagnostic::render_all;

use crate::cli::RunArgs;
use crate::workflow::{self, Plugins};
use crate::{exit, output};

/// Runs the workflow of `args`. Returns the exit code.
pub fn run(args: RunArgs, plugin_folders: &[PathBuf]) -> io::Result<u8> {
    let loaded = workflow::load(&args.file, Plugins::Search(plugin_folders));
    let (Some(document), Some(plan), Some(checked), Some(catalog)) =
        (loaded.document, loaded.plan, loaded.checked, loaded.catalog)
    else {
        output::stderr(&render_all(&loaded.diagnostics, loaded.source.as_deref()));
        return Ok(exit::INVALID);
    };

    let given: Result<Vec<(String, String)>, String> = args
        .inputs
        .iter()
        .map(|assignment| weft_spec::inputs::parse_assignment(assignment))
        .collect();
    let inputs = given.map_err(|error| vec![error]).and_then(|given| {
        weft_spec::inputs::resolve(&document.workflow.inputs, &given).map_err(|errors| {
            errors
                .iter()
                .map(|error| match error.hint() {
                    Some(hint) => format!("{error}\n  = hint: {hint}"),
                    None => error.to_string(),
                })
                .collect()
        })
    });
    let inputs = match inputs {
        Ok(inputs) => inputs,
        Err(errors) => {
            for error in errors {
                output::stderr(&format!("error: {error}\n"));
            }
            return Ok(exit::INVALID);
        }
    };

    let prepared = match Prepared::new(document.workflow, checked, plan, &catalog) {
        Ok(prepared) => prepared,
        Err(error) => {
            output::stderr(&format!("error: {error}\n"));
            return Ok(exit::INVALID);
        }
    };

    let events = match &args.events {
        Some(path) => match EventsFile::create(path) {
            Ok(file) => Some(Arc::new(file)),
            Err(error) => {
                output::stderr(&format!(
                    "error: cannot write the events file `{}`: {error}\n",
                    path.display()
                ));
                return Ok(exit::INVALID);
            }
        },
        None => None,
    };

    let mut config = PoolConfig::default();
    if let Some(workers) = args.workers {
        config.workers = workers as usize;
    }
    if let Some(wait_workers) = args.wait_workers {
        config.wait_workers = wait_workers as usize;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let control = RunControl::new();
    let report = runtime.block_on(async {
        watch_signals(control.clone());
        let engine = Engine::new(config);
        let request = RunRequest {
            run_id: run_id(),
            inputs,
            control,
            events: events.clone().map(|file| file as Arc<dyn EventSink>),
            grace: args.grace.map(weft_spec::Duration::get),
        };
        engine.run(&prepared, request).await
    });

    if let Some(file) = events
        && let Err(error) = file.close()
    {
        output::stderr(&format!(
            "warning: the events file is incomplete: {error}\n"
        ));
    }
    let outputs = serde_json::to_string_pretty(&Value::Object(report.outputs.clone()))
        .unwrap_or_else(|_| "{}".to_owned());
    output::stdout(&format!("{outputs}\n"))?;
    if !args.quiet {
        output::stderr(&summary(&report));
    }
    Ok(code(&report))
}

/// The exit code of a finished run.
fn code(report: &RunReport) -> u8 {
    match (&report.status, &report.reason) {
        (_, Some(CancelReason::Interrupted)) => exit::INTERRUPTED,
        (_, Some(CancelReason::Terminated)) => exit::TERMINATED,
        (RunStatus::Succeeded, _) => exit::SUCCESS,
        _ => exit::FAILED,
    }
}

/// A short account of the run on stderr: each stage's state, and each failure's reason.
fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let width = report
        .stages
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(5)
        .max(5);
    for (id, record) in &report.stages {
        let counts = record.counts();
        out.push_str(&format!(
            "{id:width$}  {:9}  {} ok, {} failed, {} cancelled{}  {:.2?}\n",
            record.status.as_str(),
            counts.succeeded,
            counts.failed,
            counts.cancelled,
            if counts.abandoned > 0 {
                format!(", {} abandoned", counts.abandoned)
            } else {
                String::new()
            },
            record.elapsed,
        ));
    }
    for (id, record) in &report.stages {
        if let Some(error) = &record.error {
            out.push_str(&format!("error: stage `{id}` failed: {}\n", error.message));
        }
        for (index, error) in &record.errors {
            let job = if record.fan_out {
                format!("`{id}` item {index}")
            } else {
                format!("`{id}`")
            };
            let first = error.message.lines().next().unwrap_or_default();
            out.push_str(&format!("error: {job}: {first}\n"));
        }
    }
    let verdict = match (&report.status, &report.reason) {
        (RunStatus::Succeeded, _) => "run succeeded".to_owned(),
        (_, Some(CancelReason::FailFast { stage })) => {
            format!("run failed: stage `{stage}` failed, and the run was cancelled (fail-fast)")
        }
        (_, Some(CancelReason::Timeout)) => "run failed: its timeout passed".to_owned(),
        (_, Some(CancelReason::Interrupted)) => "run interrupted".to_owned(),
        (_, Some(CancelReason::Terminated)) => "run terminated".to_owned(),
        _ => "run failed".to_owned(),
    };
    out.push_str(&format!("{verdict} in {:.2?}\n", report.elapsed));
    out
}

/// A run id: the start time in milliseconds and the process id, in hex.
fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("{millis:x}-{:x}", std::process::id())
}

/// Ctrl-C and SIGTERM cancel the run; a second signal ends the process at once.
fn watch_signals(control: RunControl) {
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return,
            };
        let first = tokio::select! {
            _ = tokio::signal::ctrl_c() => CancelReason::Interrupted,
            _ = terminate.recv() => CancelReason::Terminated,
        };
        output::stderr("\ncancelling the run (press Ctrl-C again to exit at once)\n");
        control.cancel(first.clone());
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        control.stop_now();
        let code = match first {
            CancelReason::Terminated => exit::TERMINATED,
            _ => exit::INTERRUPTED,
        };
        std::process::exit(i32::from(code));
    });
}
