//! `cargo xtask demo advanced [--short]`: tenants, monitoring, a custom failover strategy,
//! progress bars and a performance table (see `examples/src/advanced/`). Simulated servers
//! unless `--hosts URL,URL` or `COMFY_HOSTS`.

use std::process::ExitCode;

use clap::Parser;
use examples::advanced::{AdvancedArgs, run};
use examples::{Console, report};

#[tokio::main]
async fn main() -> ExitCode {
    let args = AdvancedArgs::parse();
    match run(&args, &Console::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}
