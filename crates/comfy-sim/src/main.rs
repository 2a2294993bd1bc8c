//! `comfy-sim`: serve simulated ComfyUI servers until Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use comfy_sim::SimArgs;

/// Simulated ComfyUI servers for development and tests without a GPU.
#[derive(Debug, Parser)]
#[command(name = "comfy-sim", version)]
struct Args {
    #[command(flatten)]
    sim: SimArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("comfy-sim: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args.sim))
}

async fn serve(args: SimArgs) -> ExitCode {
    let cluster = match args.start().await {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("comfy-sim: {error}");
            return ExitCode::FAILURE;
        }
    };
    for url in cluster.urls() {
        println!("{url}");
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("comfy-sim: cannot wait for Ctrl-C: {error}");
        return ExitCode::FAILURE;
    }
    drop(cluster);
    ExitCode::SUCCESS
}
