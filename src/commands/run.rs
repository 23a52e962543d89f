//! `weft run`: validate, resolve inputs, run on the shared pool with progress on stderr, print
//! the outputs and a summary, and write the events and trace files asked for.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use weft_runtime::{
    CancelReason, Engine, EventSink, EventsFile, PoolConfig, Prepared, RunControl, RunReport,
    RunRequest, RunStatus,
};
use weft_spec::diagnostic::render_all;

use crate::cli::RunArgs;
use crate::progress::{self, Progress};
use crate::sinks::Tee;
use crate::trace::Trace;
use crate::workflow::{self, Plugins};
use crate::{exit, output, summary};

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

    let stages: Vec<String> = plan.order().into_iter().map(str::to_owned).collect();
    let stage_ids: Vec<&str> = stages.iter().map(String::as_str).collect();
    let title = document
        .workflow
        .name
        .clone()
        .unwrap_or_else(|| "workflow".to_owned());
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
    let trace = match &args.trace {
        Some(path) => match Trace::create(path, &title, &stage_ids) {
            Ok(trace) => Some(Arc::new(trace)),
            Err(error) => {
                output::stderr(&format!(
                    "error: cannot write the trace file `{}`: {error}\n",
                    path.display()
                ));
                return Ok(exit::INVALID);
            }
        },
        None => None,
    };
    let attempts = (!args.quiet).then(|| Arc::new(summary::Attempts::default()));

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
    let progress =
        (!args.quiet && io::stderr().is_terminal()).then(|| Arc::new(Progress::start(&stage_ids)));
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    sinks.extend(events.clone().map(|file| file as Arc<dyn EventSink>));
    sinks.extend(trace.clone().map(|trace| trace as Arc<dyn EventSink>));
    sinks.extend(
        attempts
            .clone()
            .map(|attempts| attempts as Arc<dyn EventSink>),
    );
    sinks.extend(
        progress
            .clone()
            .map(|progress| progress as Arc<dyn EventSink>),
    );
    let report = runtime.block_on(async {
        watch_signals(control.clone());
        let engine = Engine::new(config);
        let request = RunRequest {
            run_id: run_id(),
            inputs,
            control,
            events: Tee::of(sinks),
            grace: args.grace.map(weft_spec::Duration::get),
        };
        engine.run(&prepared, request).await
    });
    if let Some(progress) = progress {
        progress.finish();
    }

    if let Some(file) = events
        && let Err(error) = file.close()
    {
        output::stderr(&format!(
            "warning: the events file is incomplete: {error}\n"
        ));
    }
    if let Some(trace) = trace
        && let Err(error) = trace.write()
    {
        output::stderr(&format!("warning: the trace file is incomplete: {error}\n"));
    }
    let outputs = serde_json::to_string_pretty(&Value::Object(report.outputs.clone()))
        .unwrap_or_else(|_| "{}".to_owned());
    output::stdout(&format!("{outputs}\n"))?;
    if let Some(attempts) = attempts {
        output::stderr(&summary::render(&report, &attempts));
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

/// A run id: the start time in milliseconds and the process id, in hex.
fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("{millis:x}-{:x}", std::process::id())
}

/// Ctrl-C and SIGTERM cancel the run; a second signal ends the process at once.
///
/// The handlers are installed before this returns, so that no signal falls between the start
/// of the run and the first poll of the watching task. Must be called within the runtime.
fn watch_signals(control: RunControl) {
    use tokio::signal::unix::{SignalKind, signal};

    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        output::stderr("warning: cannot watch for Ctrl-C; it will end weft at once\n");
        return;
    };
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = interrupt.recv() => CancelReason::Interrupted,
            _ = terminate.recv() => CancelReason::Terminated,
        };
        progress::suspend(|| {
            output::stderr("\ncancelling the run (press Ctrl-C again to exit at once)\n");
        });
        control.cancel(first.clone());
        tokio::select! {
            _ = interrupt.recv() => {}
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
