//! `cargo run -q -p examples --example batch -- [--hosts URL,URL] [--store URL] [--repeat N] [--json]
//! WORKFLOW.json...`: run workflow files through a pool (see `examples/src/batch.rs`).
//! Without `--hosts` (or `COMFY_HOSTS`) it starts two simulated servers.

use std::process::ExitCode;

use clap::Parser;
use examples::batch::{BatchArgs, run};
use examples::{Console, report};

#[tokio::main]
async fn main() -> ExitCode {
    let args = BatchArgs::parse();
    match run(&args, &Console::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}
