//! `weft`: validate, draw and run declarative workflows.

mod cli;
mod commands;
mod exit;
mod output;
mod progress;
mod scaffold;
mod sinks;
mod summary;
mod trace;
mod workflow;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::workflow::Plugins;

/// Logs go to stderr: warnings and plugin lines at info by default (warnings alone with
/// `--quiet`), more with `-v`, and
/// exactly what `RUST_LOG` says when it is set.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match verbose {
        _ if quiet => "warn",
        0 => "warn,plugin=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return exit::code(if error.use_stderr() {
                exit::INVALID
            } else {
                exit::SUCCESS
            });
        }
    };

    let quiet = matches!(&cli.command, Command::Run(args) if args.quiet);
    init_logging(cli.verbose, quiet);

    let result = match cli.command {
        Command::Run(args) => commands::run::run(args, &cli.plugin_path),
        Command::Validate {
            files,
            no_plugins,
            format,
        } => {
            let plugins = if no_plugins {
                Plugins::Skip
            } else {
                Plugins::Search(&cli.plugin_path)
            };
            commands::validate::run(&files, format, plugins)
        }
        Command::Graph { file, format, run } => commands::graph::run(&file, format, run.as_deref()),
        Command::Schema { plugins } => {
            commands::schema::run(plugins.then_some(&cli.plugin_path[..]))
        }
        Command::Plugins { action } => commands::plugins::run(action, &cli.plugin_path),
    };

    match result {
        Ok(code) => exit::code(code),
        Err(error) => {
            output::stderr(&format!("error: cannot write the output: {error}\n"));
            exit::code(exit::FAILED)
        }
    }
}
