//! `comfy-pool`: the command line (see the `comfy_pool_cli` library for the commands).

use std::process::ExitCode;

use clap::Parser;
use comfy_pool_cli::Cli;

fn main() -> ExitCode {
    Cli::parse().execute()
}
