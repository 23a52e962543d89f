//! `weft`: validate, draw and run declarative workflows.

mod cli;
mod commands;
mod exit;
mod output;
mod scaffold;
mod workflow;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::workflow::Plugins;

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

    let result = match cli.command {
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
        Command::Graph { file, format } => commands::graph::run(&file, format),
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
