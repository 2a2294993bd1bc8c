//! `comfy-sim`: serve simulated ComfyUI servers until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use comfy_sim::{ComfyVersion, FaultSettings, RejectionStyle, SimCluster, SimConfig};

/// Simulated ComfyUI servers for development and tests without a GPU.
#[derive(Debug, Parser)]
#[command(name = "comfy-sim", disable_version_flag = true)]
struct Args {
    /// The ComfyUI release to answer as (0.8 adds the Jobs API under /api).
    #[arg(long, value_enum, default_value = "0.3.64")]
    version: VersionArg,
    /// How prompts with an unknown node class are rejected: legacy (invalid_prompt, as
    /// 0.3.x-0.8) or current (missing_node_type, as later releases).
    #[arg(long = "rejection-style", value_enum, default_value = "legacy")]
    rejection_style: StyleArg,
    /// Address of the first server; more servers take the following ports.
    #[arg(long, default_value = "127.0.0.1:8188")]
    listen: SocketAddr,
    /// Number of servers to start on consecutive ports.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Fail prompts containing this node class at run time (repeatable).
    #[arg(long = "fail-class", value_name = "NAME")]
    fail_class: Vec<String>,
    /// Treat this model file as not installed (repeatable).
    #[arg(long = "missing-model", value_name = "FILE")]
    missing_model: Vec<String>,
    /// Install a model file, as FOLDER/FILE (repeatable), e.g. checkpoints/sdxl.safetensors.
    #[arg(long = "model", value_name = "FOLDER/FILE")]
    model: Vec<String>,
    /// Execution time of every node, in milliseconds.
    #[arg(long = "exec-ms", default_value_t = 0)]
    exec_ms: u64,
    /// Progress steps every node reports.
    #[arg(long, default_value_t = 0)]
    steps: u32,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Chance (0..1) that a prompt fails at run time.
    #[arg(long = "error-probability", default_value_t = 0.0)]
    error_probability: f64,
}

/// `--version` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum VersionArg {
    /// ComfyUI 0.3.64.
    #[value(name = "0.3.64", alias = "0.3")]
    V0_3_64,
    /// ComfyUI 0.8.0.
    #[value(name = "0.8", alias = "0.8.0")]
    V0_8,
}

/// `--rejection-style` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StyleArg {
    /// `invalid_prompt`, "Cannot execute because node X does not exist."
    Legacy,
    /// `missing_node_type`, "Node 'X' not found. The custom node may not be installed."
    Current,
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
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    let mut faults = FaultSettings::default();
    faults.fail_classes.extend(args.fail_class);
    faults.missing_models.extend(args.missing_model);
    faults.error_probability = args.error_probability.clamp(0.0, 1.0);
    faults.rejection_style = match args.rejection_style {
        StyleArg::Legacy => RejectionStyle::Legacy,
        StyleArg::Current => RejectionStyle::Current,
    };
    let version = match args.version {
        VersionArg::V0_3_64 => ComfyVersion::V0_3_64,
        VersionArg::V0_8 => ComfyVersion::V0_8,
    };
    let mut config = SimConfig::default()
        .version(version)
        .listen(args.listen)
        .exec_time(Duration::from_millis(args.exec_ms))
        .steps(args.steps)
        .seed(args.seed)
        .faults(faults);
    for model in &args.model {
        let Some((folder, file)) = model.split_once('/') else {
            eprintln!("comfy-sim: --model wants FOLDER/FILE, got {model}");
            return ExitCode::FAILURE;
        };
        config = config.model(folder, file);
    }
    let cluster = match SimCluster::start(args.count.max(1), config).await {
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
