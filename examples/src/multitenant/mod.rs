//! `demo multitenant`: a service template. Each tenant has its own queue share and metrics;
//! alert hooks hear about blocked workflows, and a workflow blocked on several servers at
//! once is detected and reported (it is probably the workflow, or a model it needs, that is
//! at fault).
//!
//! On simulated servers, the `sdxl` checkpoint is broken on two of the three servers, so
//! tenant `acme`'s SDXL workflow is blocked on both and runs on the third, while tenant
//! `globex` is not affected at all.

mod alerts;

use std::time::Duration;

use comfy_pool::prelude::*;

pub use self::alerts::{Alert, AlertHook, AlertLog, Alerter};
use crate::workload::{self, TenantSpec, Workload};
use crate::{
    Checks, Console, EventLog, Fleet, HostsArg, JobBook, Result, Workflow, describe, setup,
    timeline,
};

/// Options of `demo multitenant`.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "demo multitenant",
    about = "A multi-tenant service template with alerting (simulated servers unless --hosts)"
)]
pub struct MultitenantArgs {
    /// Real servers to use.
    #[command(flatten)]
    pub hosts: HostsArg,
    /// Run for ~3 s instead of ~10 s (for CI).
    #[arg(long)]
    pub short: bool,
    /// Print every event of the pool.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Prints each alert as it comes: the stand-in for a pager or a chat hook.
struct PrintHook(Console);

impl AlertHook for PrintHook {
    fn alert(&self, alert: &Alert) {
        let text = match alert {
            Alert::WorkflowBlocked {
                server,
                hash,
                class,
            } => {
                format!(
                    "workflow {} blocked on {server} ({class})",
                    describe::short(hash)
                )
            }
            Alert::WorkflowBlockedOnMany { hash, servers } => format!(
                "PAGE: workflow {} is blocked on {} servers ({}): check the workflow and its models",
                describe::short(hash),
                servers.len(),
                servers.join(", ")
            ),
            Alert::ServerOffline { server, error } => {
                format!(
                    "server {server} offline: {}",
                    error.as_deref().unwrap_or("?")
                )
            }
        };
        self.0.line(format!("  alert: {text}"));
    }
}

/// Runs the demo and returns how many checks passed.
///
/// # Errors
///
/// [`crate::DemoError::ChecksFailed`] when a claim did not hold; setup and pool errors.
pub async fn run(args: &MultitenantArgs, console: &Console) -> Result<usize> {
    let duration = Duration::from_secs(if args.short { 3 } else { 10 });
    let fleet = match args.hosts.urls()? {
        Some(urls) => Fleet::real(urls),
        None => setup::sim_fleet(&["node-1", "node-2", "node-3"], Duration::from_millis(5)).await?,
    };
    console.line("comfy-pool multitenant demo: per-tenant queues and metrics, alerting");
    console.line(fleet.describe());
    let txt2img = Workflow::named("txt2img-checkpoint")?;
    let sdxl = txt2img.with_input("txt2img-sdxl", "4", "ckpt_name", "sdxl.safetensors")?;
    let invert = Workflow::named("invert-save")?;
    let scale = Workflow::named("emptyimage-scale-preview")?;
    let (acme, globex) = if fleet.is_simulated() {
        for id in ["node-1", "node-2"] {
            if let Some(sim) = fleet.sim(id) {
                sim.faults().fail_model("sdxl.safetensors");
            }
        }
        console.line("simulated fault: the sdxl checkpoint is corrupt on node-1 and node-2 (runs fail there)");
        (
            vec![sdxl.clone(), txt2img.clone(), invert.clone()],
            vec![invert.clone(), scale.clone()],
        )
    } else {
        // Stock servers have no checkpoints: stay with workflows that need no weights.
        (
            vec![invert.clone(), scale.clone()],
            vec![scale.clone(), invert.clone()],
        )
    };
    let tenants = vec![
        TenantSpec::new("acme", 5, 1).workflows(acme),
        TenantSpec::new("globex", 5, 1).workflows(globex),
    ];
    let strategy = SmartStrategy::builder()
        .config(SmartConfig::production())
        .cooldown(Duration::from_secs(30))
        .all_blocked(AllBlockedPolicy::WaitForEarliest)
        .build()?;
    let pool = setup::pool(&fleet, Arc::new(strategy), 2)?;
    let book = JobBook::new();
    let log = EventLog::start(&pool, book.clone(), args.verbose.then(|| console.clone()));
    let alert_log = AlertLog::default();
    let _alerter = Alerter::start(
        &pool,
        2,
        vec![
            Arc::new(PrintHook(console.clone())),
            Arc::new(alert_log.clone()),
        ],
    );
    setup::wait_ready(&pool, &log).await?;

    let workload = Workload {
        tenants: tenants.clone(),
        workflows: Vec::new(),
        duration,
        max_in_flight: fleet.servers().len() * 4,
        max_attempts: 3,
    };
    console.heading(format!("Serving 2 tenants for {} s", duration.as_secs()));
    let (records, wall) = workload::drive(&pool, &book, &workload, |_| {}, |_| {}).await?;
    console.line(format!(
        "{} jobs in {:.1} s",
        records.len(),
        wall.as_secs_f64()
    ));

    console.heading("Per-tenant metrics");
    for line in workload::tenant_table(&tenants, &records)
        .to_string()
        .lines()
    {
        console.line(format!("  {line}"));
    }
    let stats = pool.stats().await?;
    console.heading("Blocks now");
    let label = |hash: &WorkflowHash| {
        [&sdxl, &txt2img, &invert, &scale]
            .iter()
            .find(|w| w.hash == *hash)
            .map_or_else(|| "?".to_owned(), |w| w.name.clone())
    };
    for line in setup::block_table(&stats.blocks, label).to_string().lines() {
        console.line(format!("  {line}"));
    }

    console.heading("Checks");
    let mut checks = Checks::new(console.clone());
    let per_tenant = workload::by_tenant(&records);
    for tenant in &tenants {
        let report = per_tenant.get(&tenant.name).cloned().unwrap_or_default();
        checks.check_with(
            report.completed > 0 && report.failed == 0,
            format!(
                "tenant {}: all {} jobs completed",
                tenant.name, report.completed
            ),
            || format!("{} failed", report.failed),
        );
    }
    let snapshot = log.snapshot();
    let dispatches = timeline::dispatches(&snapshot, &book);
    let wrong = timeline::dispatches_into_blocks(&timeline::blocks(&snapshot), &dispatches);
    checks.check(
        wrong.is_empty(),
        "no job was dispatched to a server that blocked its workflow",
    );
    if fleet.is_simulated() {
        let alerts = alert_log.alerts();
        let many: Vec<&Alert> = alerts
            .iter()
            .filter(
                |a| matches!(a, Alert::WorkflowBlockedOnMany { hash, .. } if *hash == sdxl.hash),
            )
            .collect();
        checks.check_with(
            many.len() == 1
                && matches!(many.first(), Some(Alert::WorkflowBlockedOnMany { servers, .. }) if servers == &["node-1", "node-2"]),
            "the sdxl workflow was reported once as blocked on several servers (node-1, node-2)",
            || format!("alerts: {alerts:?}"),
        );
        let others_blocked = alerts
            .iter()
            .any(|a| matches!(a, Alert::WorkflowBlocked { hash, .. } if *hash != sdxl.hash));
        checks.check(
            !others_blocked,
            "no other workflow was blocked anywhere: sd15 and globex ran everywhere",
        );
        let sdxl_servers: Vec<&str> = records
            .iter()
            .filter(|r| r.workflow == sdxl.name)
            .filter_map(|r| r.server.as_deref())
            .collect();
        checks.check(
            !sdxl_servers.is_empty() && sdxl_servers.iter().all(|s| *s == "node-3"),
            format!(
                "every sdxl job ({}) completed on node-3, the only healthy server for it",
                sdxl_servers.len()
            ),
        );
        let globex_everywhere = ["node-1", "node-2", "node-3"].iter().all(|id| {
            records
                .iter()
                .any(|r| r.tenant == "globex" && r.server.as_deref() == Some(*id))
        });
        checks.check(
            globex_everywhere,
            "globex's jobs kept using all three servers",
        );
    }
    pool.shutdown(ShutdownMode::Drain).await;
    checks.finish()
}
