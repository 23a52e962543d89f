//! `weft`: validate, draw and run declarative workflows.

mod cli;
mod commands;
mod exit;
mod output;
mod workflow;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

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
            no_plugins: _,
            format,
        } => commands::validate::run(&files, format),
        Command::Graph { file, format } => commands::graph::run(&file, format),
        Command::Schema => commands::schema::run(),
    };

    match result {
        Ok(code) => exit::code(code),
        Err(error) => {
            output::stderr(&format!("error: cannot write the output: {error}\n"));
            exit::code(exit::FAILED)
        }
    }
}
