//! `comfy-pool serve`: the pool as an HTTP service (the `pool-server` library), until
//! SIGINT or SIGTERM; `--demo` adds three simulated servers, an admin key and two tenants.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use comfy_pool::sim::{SimCluster, SimConfig};
use pool_server::config::{ServerEntry, TenantConfig};
use pool_server::{Config, Secret, Service, issue_key};
use rand::RngCore;

use crate::error::{Error, Result};

/// The tenants `--demo` makes a key for.
pub const DEMO_TENANTS: [&str; 2] = ["demo-a", "demo-b"];

/// The arguments of `comfy-pool serve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; `COMFY_POOL__…` variables override its keys).
    #[arg(long, short, value_name = "FILE", required_unless_present = "demo")]
    pub config: Option<PathBuf>,
    /// Start three simulated ComfyUI servers in this process, make a random admin key and
    /// keys for two demo tenants, and print them (with --config: on top of that file).
    #[arg(long)]
    pub demo: bool,
    /// Listen here instead of the configuration's `listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Use this store instead of the configuration's `store` (`sqlite:PATH`,
    /// `postgres://…`, `memory:`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The configuration `args` describe (the file, then the flags).
///
/// # Errors
///
/// [`Error::Config`] naming the file and key.
pub fn configuration(args: &ServeArgs) -> Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::for_embedding(&random_token("admin-")),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(store) = &args.store {
        config.store = Secret::new(store.as_str());
    } else if args.config.is_none() {
        config.store = Secret::new("memory:");
    }
    Ok(config)
}

/// Serves until `stop` completes, then shuts the pool down as configured. Writes
/// `url: http://ADDR` to `out` once listening; with `--demo` also `admin-key: KEY` and
/// `tenant-key: NAME KEY` per demo tenant (keys shown here only).
///
/// # Errors
///
/// [`Error::Config`], [`Error::Service`], [`Error::Sim`], or [`Error::Io`].
pub async fn serve(
    args: &ServeArgs,
    out: &mut dyn Write,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut config = configuration(args)?;
    let mut shown = Vec::new();
    let sims = if args.demo {
        let sims = SimCluster::start(
            3,
            SimConfig::default()
                .exec_time(std::time::Duration::from_millis(1500))
                .steps(10),
        )
        .await?;
        for (i, url) in sims.urls().into_iter().enumerate() {
            config
                .servers
                .push(ServerEntry::new(format!("sim-{}", i + 1), url));
        }
        let admin = random_token("admin-");
        config.admin_key = Some(Secret::new(admin.as_str()));
        config.admin_key_sha256 = None;
        shown.push(format!("admin-key: {admin}"));
        for tenant in DEMO_TENANTS {
            if config.tenant(tenant).is_none() {
                config.tenants.push(TenantConfig::new(tenant));
            }
        }
        Some(sims)
    } else {
        None
    };
    let service = Service::start(config).await?;
    if args.demo {
        for tenant in DEMO_TENANTS {
            let key = issue_key(service.store().as_ref(), tenant)
                .await
                .map_err(|e| Error::Usage(format!("cannot store a demo key: {e}")))?;
            shown.push(format!("tenant-key: {tenant} {}", key.secret));
        }
    }
    let listener = tokio::net::TcpListener::bind(service.config().listen)
        .await
        .map_err(|source| Error::Io {
            what: "cannot listen",
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "cannot listen",
        source,
    })?;
    writeln!(out, "url: http://{addr}").map_err(Error::output)?;
    for line in &shown {
        writeln!(out, "{line}").map_err(Error::output)?;
    }
    out.flush().map_err(Error::output)?;
    service.serve(listener, stop).await?;
    drop(sims);
    Ok(())
}
