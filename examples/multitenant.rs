//! `cargo xtask demo multitenant [--short]`: a multi-tenant service template with per-tenant
//! metrics and alerting hooks (see `examples/src/multitenant/`). Simulated servers
//! unless `--hosts URL,URL` or `COMFY_HOSTS`.

use std::process::ExitCode;

use clap::Parser;
use examples::multitenant::{MultitenantArgs, run};
use examples::{Console, report};

#[tokio::main]
async fn main() -> ExitCode {
    let args = MultitenantArgs::parse();
    match run(&args, &Console::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}
