//! `comfy-pool keys`: tenants' API keys in the service's store (only their SHA-256 is
//! kept; a new key is printed once).

use std::io::Write;
use std::path::PathBuf;

use pool_server::{Config, issue_key, open_store};

use crate::error::{Error, Result};

/// The arguments of `comfy-pool keys`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
    /// The service's configuration file (for its store).
    #[arg(long, short, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The store, instead of the configuration's.
    #[arg(long, value_name = "URL", global = true)]
    pub store: Option<String>,
}

/// What `comfy-pool keys` does.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
#[non_exhaustive]
pub enum KeysAction {
    /// Make a key for a tenant, store its hash and print the key (this once).
    New {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// List the stored keys (public ids, tenants, never the keys).
    List,
    /// Revoke a key by its public id.
    Revoke {
        /// The key's public id (the 8 hex digits after `cpk_`).
        id: String,
    },
}

async fn store_url(args: &KeysArgs) -> Result<String> {
    if let Some(url) = &args.store {
        return Ok(url.clone());
    }
    match &args.config {
        Some(path) => Ok(Config::load(path)?.store.expose().to_owned()),
        None => Err(Error::Usage(
            "give --config FILE or --store URL (where the service keeps its keys)".into(),
        )),
    }
}

/// Runs `comfy-pool keys`, printing to `out`.
///
/// # Errors
///
/// [`Error::Usage`], [`Error::Config`], [`Error::Service`] or [`Error::Io`].
pub async fn keys(args: &KeysArgs, out: &mut dyn Write) -> Result<()> {
    let url = store_url(args).await?;
    let store = open_store(&url)
        .await
        .map_err(|e| Error::Service(e.into()))?;
    let failed = |e: pool_server::StoreOpenError| Error::Service(e.into());
    match &args.action {
        KeysAction::New { tenant } => {
            if !pool_server::config::is_tenant_name(tenant) {
                return Err(Error::Usage(format!(
                    "tenant {tenant:?}: 1 to 64 letters, digits, `-`, `_` or `.`"
                )));
            }
            let key = issue_key(store.as_ref(), tenant)
                .await
                .map_err(|e| failed(e.into()))?;
            writeln!(out, "tenant: {tenant}").map_err(Error::output)?;
            writeln!(out, "id: {}", key.record.id).map_err(Error::output)?;
            writeln!(out, "key: {}", key.secret).map_err(Error::output)?;
            writeln!(out, "sha256: {}", key.record.hash).map_err(Error::output)?;
            if url.starts_with("memory:") {
                writeln!(
                    out,
                    "note: the memory: store keeps nothing; put the sha256 in the tenant's \
                     `keys` in the configuration"
                )
                .map_err(Error::output)?;
            }
        }
        KeysAction::List => {
            for key in store.keys().await.map_err(|e| failed(e.into()))? {
                let revoked = if key.revoked { " revoked" } else { "" };
                writeln!(out, "{} {} {}{revoked}", key.id, key.tenant, key.created_at)
                    .map_err(Error::output)?;
            }
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_key(id).await.map_err(|e| failed(e.into()))? {
                return Err(Error::Usage(format!("no key with id {id}")));
            }
            writeln!(out, "revoked: {id}").map_err(Error::output)?;
        }
    }
    Ok(())
}
