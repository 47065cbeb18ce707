//! `azure-durable-functions new <dir>`: a new Durable Functions app in Rust, before there is an app to run.
//!
//! Installed with `cargo install azure-durable-functions`, or run from a checkout with
//! `cargo run -p azure-durable-functions -- new <dir> --facade-path crates/azure-durable-functions`.

use std::path::PathBuf;
use std::process::ExitCode;

use azure_durable_functions::new_app::{NewAppOptions, create};
use clap::{Parser, Subcommand};

/// Durable Functions in Rust: start a new app.
#[derive(Debug, Parser)]
#[command(name = "azure-durable-functions", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new app from the template, in a new folder.
    New {
        /// The folder to create; its name is the package name unless --name says otherwise.
        path: PathBuf,
        /// The package (and executable) name.
        #[arg(long)]
        name: Option<String>,
        /// Depend on azure-durable-functions through this folder instead of crates.io.
        #[arg(long, value_name = "DIR")]
        facade_path: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let Command::New {
        path,
        name,
        facade_path,
    } = Args::parse().command;
    let mut options = NewAppOptions::new(path);
    if let Some(name) = name {
        options = options.with_name(name);
    }
    if let Some(dir) = facade_path {
        options = options.with_facade_path(dir);
    }
    match create(&options) {
        Ok(created) => {
            print!("{}", created.next_steps());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
