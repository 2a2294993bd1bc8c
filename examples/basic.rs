//! `cargo xtask demo basic`: the tour of hash-based failover routing (see
//! `examples/src/basic.rs`). Simulated servers unless `--hosts URL,URL` or `COMFY_HOSTS`.

use std::process::ExitCode;

use clap::Parser;
use examples::basic::{BasicArgs, run};
use examples::{Console, report};

#[tokio::main]
async fn main() -> ExitCode {
    let args = BasicArgs::parse();
    match run(&args, &Console::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}
