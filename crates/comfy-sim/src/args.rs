//! [`SimArgs`]: the command-line options of a set of simulated servers, shared by the
//! `comfy-sim` binary and `comfy-pool sim`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cluster::SimCluster;
use crate::config::SimConfig;
use crate::error::Result;
use crate::faults::{FaultSettings, RejectionStyle};
use crate::version::ComfyVersion;

/// How to start simulated servers from a command line (a `clap` argument group: flatten it
/// into a command with `#[command(flatten)]`).
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Command {
///     #[command(flatten)]
///     sim: comfy_sim::SimArgs,
/// }
///
/// let command = Command::try_parse_from([
///     "sim", "--listen", "127.0.0.1:0", "--count", "2", "--model", "loras/detail.safetensors",
/// ])?;
/// assert_eq!(command.sim.count, 2);
/// assert!(Command::try_parse_from(["sim", "--model", "no-folder.safetensors"]).is_err());
/// assert!(Command::try_parse_from(["sim", "--error-probability", "1.5"]).is_err());
/// let v08 = Command::try_parse_from(["sim", "--comfy-version", "0.8", "--rejection-style", "current"])?;
/// assert_eq!(v08.sim.comfy_version, comfy_sim::ComfyVersion::V0_8);
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct SimArgs {
    /// Address of the first server; more servers take the following ports (with port 0,
    /// each server gets its own ephemeral port).
    #[arg(long, default_value = "127.0.0.1:8188")]
    pub listen: SocketAddr,
    /// Number of servers to start.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub count: u16,
    /// Fail prompts containing this node class at run time (repeatable).
    #[arg(long = "fail-class", value_name = "NAME")]
    pub fail_class: Vec<String>,
    /// Treat this model file as not installed (repeatable).
    #[arg(long = "missing-model", value_name = "FILE")]
    pub missing_model: Vec<String>,
    /// Install a model file, as FOLDER/FILE (repeatable), e.g. checkpoints/sdxl.safetensors.
    #[arg(long = "model", value_name = "FOLDER/FILE", value_parser = model_file)]
    pub model: Vec<(String, String)>,
    /// Execution time of every node, in milliseconds.
    #[arg(long = "exec-ms", default_value_t = 0)]
    pub exec_ms: u64,
    /// Progress steps every node reports.
    #[arg(long, default_value_t = 0)]
    pub steps: u32,
    /// Seed of the random choices (server `i` uses `seed + i`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Chance (0..1) that a prompt fails at run time.
    #[arg(long = "error-probability", default_value_t = 0.0, value_parser = probability)]
    pub error_probability: f64,
    /// Which ComfyUI release's answers to give (`0.3.64`, or `0.8` with the Jobs API).
    #[arg(long = "comfy-version", value_name = "VERSION", default_value = "0.3.64", value_parser = comfy_version)]
    pub comfy_version: ComfyVersion,
    /// How an unknown node class is rejected: `legacy` (`invalid_prompt`, "Cannot execute
    /// because node X does not exist.") or `current` (`missing_node_type`, later releases).
    #[arg(long = "rejection-style", value_name = "STYLE", default_value = "legacy", value_parser = rejection_style)]
    pub rejection_style: RejectionStyle,
}

impl SimArgs {
    /// The configuration every server starts from (the listen address of the first one).
    pub fn config(&self) -> SimConfig {
        let mut faults = FaultSettings::default();
        faults.fail_classes.extend(self.fail_class.iter().cloned());
        faults
            .missing_models
            .extend(self.missing_model.iter().cloned());
        faults.error_probability = self.error_probability;
        faults.rejection_style = self.rejection_style;
        let mut config = SimConfig::default()
            .version(self.comfy_version)
            .listen(self.listen)
            .exec_time(Duration::from_millis(self.exec_ms))
            .steps(self.steps)
            .seed(self.seed)
            .faults(faults);
        for (folder, file) in &self.model {
            config = config.model(folder, file);
        }
        config
    }

    /// Starts the servers.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`](crate::Error::Bind) when a port cannot be bound.
    pub async fn start(&self) -> Result<SimCluster> {
        SimCluster::start(usize::from(self.count), self.config()).await
    }
}

/// Parses `FOLDER/FILE`.
fn model_file(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('/') {
        Some((folder, file)) if !folder.is_empty() && !file.is_empty() => {
            Ok((folder.to_owned(), file.to_owned()))
        }
        _ => Err(format!("wants FOLDER/FILE, got {text:?}")),
    }
}

/// Parses a ComfyUI version name.
fn comfy_version(text: &str) -> std::result::Result<ComfyVersion, String> {
    match text {
        "0.3.64" | "0.3" => Ok(ComfyVersion::V0_3_64),
        "0.8" | "0.8.0" => Ok(ComfyVersion::V0_8),
        _ => Err(format!(
            "{text:?} is not a simulated version (0.3.64 or 0.8)"
        )),
    }
}

/// Parses a rejection style.
fn rejection_style(text: &str) -> std::result::Result<RejectionStyle, String> {
    match text {
        "legacy" => Ok(RejectionStyle::Legacy),
        "current" => Ok(RejectionStyle::Current),
        _ => Err(format!(
            "{text:?} is not a rejection style (legacy or current)"
        )),
    }
}

/// Parses a probability in `0..=1`.
fn probability(text: &str) -> std::result::Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::{model_file, probability};

    #[test]
    fn model_files_need_a_folder_and_a_file() {
        assert_eq!(
            model_file("loras/a/b.safetensors"),
            Ok(("loras".to_owned(), "a/b.safetensors".to_owned()))
        );
        for bad in ["x.safetensors", "/x", "loras/"] {
            assert!(model_file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn probabilities_stay_within_zero_and_one() {
        assert_eq!(probability("0.25"), Ok(0.25));
        for bad in ["-0.1", "1.01", "NaN", "x"] {
            assert!(probability(bad).is_err(), "{bad}");
        }
    }
}
