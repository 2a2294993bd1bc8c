//! `demo advanced`: a busy fleet for ~30 s (`--short`: ~5 s). Three tenants with different
//! priorities, live event monitoring, a custom [`FailoverStrategy`] ([`Quarantine`]) and
//! live progress bars, then a performance table.
//!
//! On simulated servers the fleet misbehaves on purpose: `gpu-2` lacks the `ImageBlur` node,
//! `gpu-3` fails a quarter of its runs at random, and `gpu-4` crashes and restarts midway.

mod quarantine;

use std::time::Duration;

use comfy_pool::prelude::*;
use comfy_pool::{PoolStats, ServerStats};

pub use self::quarantine::{Quarantine, QuarantineSpan};
use crate::metrics::{Latencies, ms};
use crate::monitor::Monitor;
use crate::progress::Bars;
use crate::workload::{self, TenantSpec, Workload};
use crate::{
    Checks, Console, EventLog, Fleet, HostsArg, JobBook, Result, Table, Workflow, describe, setup,
    timeline,
};

/// Options of `demo advanced`.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "demo advanced",
    about = "Tenants, monitoring, a custom strategy and a performance table (simulated servers unless --hosts)"
)]
pub struct AdvancedArgs {
    /// Real servers to use.
    #[command(flatten)]
    pub hosts: HostsArg,
    /// Run for ~5 s instead of ~30 s (for CI).
    #[arg(long)]
    pub short: bool,
    /// Print every event of the pool.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The tenants: a studio with deadlines, a batch pipeline and a free tier.
pub fn tenants() -> Vec<TenantSpec> {
    vec![
        TenantSpec::new("studio", 10, 2),
        TenantSpec::new("batch", 0, 5),
        TenantSpec::new("free-tier", -5, 3),
    ]
}

/// Runs the demo and returns how many checks passed.
///
/// # Errors
///
/// [`crate::DemoError::ChecksFailed`] when a claim did not hold; setup and pool errors.
pub async fn run(args: &AdvancedArgs, console: &Console) -> Result<usize> {
    let duration = Duration::from_secs(if args.short { 4 } else { 28 });
    let names = ["gpu-1", "gpu-2", "gpu-3", "gpu-4"];
    let fleet = match args.hosts.urls()? {
        Some(urls) => Fleet::real(urls),
        None => setup::sim_fleet(&names, Duration::from_millis(8)).await?,
    };
    console.line("comfy-pool advanced demo: tenants, monitoring, a custom strategy");
    console.line(fleet.describe());
    if fleet.is_simulated() {
        if let Some(sim) = fleet.sim("gpu-2") {
            sim.faults().reject_class("ImageBlur");
        }
        if let Some(sim) = fleet.sim("gpu-3") {
            sim.faults().set_error_probability(0.25);
        }
        console.line("simulated faults: gpu-2 lacks node ImageBlur; gpu-3 fails 25% of runs; gpu-4 will crash and restart");
    }

    let smart = SmartStrategy::builder()
        .config(SmartConfig::development())
        .cooldown(Duration::from_secs(2))
        .max_failures_before_block(2)
        .build()?;
    let quarantine = Arc::new(Quarantine::new(
        smart,
        3,
        Duration::from_secs(5),
        Duration::from_secs(2),
    ));
    console.line(
        "strategy: Quarantine (written in this example) = smart strategy (block a pair after 2 \
         failures for 2 s) + quarantine a server for 2 s when 3 different workflows fail on it within 5 s",
    );
    let pool = setup::pool(
        &fleet,
        Arc::clone(&quarantine) as Arc<dyn FailoverStrategy>,
        1,
    )?;
    let book = JobBook::new();
    let log = EventLog::start(&pool, book.clone(), args.verbose.then(|| console.clone()));
    let notable_console = console.clone();
    let notable_book = book.clone();
    let monitor = Monitor::start(
        &pool,
        Box::new(move |event| {
            if let Some(line) = describe::event(event, &notable_book) {
                notable_console.line(format!("  event: {line}"));
            }
        }),
    );
    setup::wait_ready(&pool, &log).await?;

    let workload = Workload {
        tenants: tenants(),
        workflows: vec![
            Workflow::named("invert-save")?,
            Workflow::named("emptyimage-scale-preview")?,
            Workflow::named("loadimage-blur-save")?,
            Workflow::named("getimagesize-savews-binary")?,
        ],
        duration,
        max_in_flight: fleet.servers().len() * 6,
        max_attempts: 4,
    };
    console.heading(format!(
        "Running {} s of work from {} tenants ({} jobs in flight at most)",
        duration.as_secs(),
        workload.tenants.len(),
        workload.max_in_flight
    ));

    // The crash of gpu-4, a third of the way in, and its restart at half time.
    let crash = fleet.sim("gpu-4").map(|_| {
        let at = duration / 3;
        let back = duration / 2;
        (at, back)
    });
    let bars = Bars::new(console);
    let tenant_bars: Vec<_> = workload
        .tenants
        .iter()
        .map(|t| bars.bar(0, &t.name))
        .collect();
    let find_bar = |name: &str| {
        workload
            .tenants
            .iter()
            .position(|t| t.name == name)
            .and_then(|i| tenant_bars.get(i))
    };
    let drive = workload::drive(
        &pool,
        &book,
        &workload,
        |tenant| {
            if let Some(bar) = find_bar(tenant) {
                bar.inc_length(1);
            }
        },
        |record| {
            if let Some(bar) = find_bar(&record.tenant) {
                bar.inc(1);
            }
        },
    );
    let chaos = async {
        if let (Some((at, back)), Some(sim)) = (crash, fleet.sim("gpu-4")) {
            tokio::time::sleep(at).await;
            console.line("  chaos: gpu-4 crashes (queue and history lost)");
            sim.stop().await;
            tokio::time::sleep(back - at).await;
            console.line("  chaos: gpu-4 restarts");
            let _ = sim.restart().await;
        }
    };
    let (driven, ()) = tokio::join!(drive, chaos);
    let (records, wall) = driven?;
    drop(tenant_bars);
    drop(bars);

    let stats = pool.stats().await?;
    let counters = monitor.counters();
    console.heading("Per tenant");
    print_table(
        console,
        &workload::tenant_table(&workload.tenants, &records),
    );

    console.heading("Per server");
    print_table(console, &server_table(&stats));

    console.heading("Performance");
    let completed: Vec<_> = records.iter().filter(|r| r.ok).collect();
    let mut latency = Latencies::new();
    for r in &completed {
        latency.push(r.latency);
    }
    let mut perf = Table::new([
        "jobs",
        "completed",
        "jobs/s",
        "p50 latency",
        "p95 latency",
        "retries",
        "blocks",
        "probes",
        "quarantines",
    ]);
    perf.row([
        records.len().to_string(),
        completed.len().to_string(),
        format!(
            "{:.1}",
            completed.len() as f64 / wall.as_secs_f64().max(1e-9)
        ),
        ms(latency.percentile(50.0)),
        ms(latency.percentile(95.0)),
        counters.retries.to_string(),
        counters.blocks.to_string(),
        counters.probes.to_string(),
        quarantine.history().len().to_string(),
    ]);
    print_table(console, &perf);

    console.heading("Checks");
    let mut checks = Checks::new(console.clone());
    check_common(&mut checks, &records, &log, &book);
    check_priorities(&mut checks, &records);
    if fleet.is_simulated() {
        check_faults(
            &mut checks,
            &fleet,
            &records,
            &counters,
            &quarantine,
            &log,
            &book,
        );
    }
    pool.shutdown(ShutdownMode::Drain).await;
    checks.finish()
}

fn print_table(console: &Console, table: &Table) {
    for line in table.to_string().lines() {
        console.line(format!("  {line}"));
    }
}

fn server_table(stats: &PoolStats) -> Table {
    let mut table = Table::new([
        "server",
        "state",
        "attempts ok",
        "attempts failed",
        "last error",
    ]);
    for s in &stats.servers {
        let ServerStats {
            id,
            state,
            completed,
            failed,
            last_error,
            ..
        } = s;
        table.row([
            id.to_string(),
            state.to_string(),
            completed.to_string(),
            failed.to_string(),
            last_error
                .as_deref()
                .map(describe::first_line)
                .unwrap_or_default(),
        ]);
    }
    table
}

fn check_common(
    checks: &mut Checks,
    records: &[workload::JobRecord],
    log: &EventLog,
    book: &JobBook,
) {
    let ok = records.iter().filter(|r| r.ok).count();
    checks.check_with(
        !records.is_empty() && ok * 100 >= records.len() * 98,
        format!(
            "{ok} of {} jobs completed (at least 98%), every job reached an end",
            records.len()
        ),
        || {
            let errors: Vec<_> = records
                .iter()
                .filter_map(|r| r.error.clone())
                .take(3)
                .collect();
            format!("first errors: {errors:?}")
        },
    );
    let snapshot = log.snapshot();
    let spans = timeline::blocks(&snapshot);
    let dispatches = timeline::dispatches(&snapshot, book);
    let wrong = timeline::dispatches_into_blocks(&spans, &dispatches);
    checks.check_with(
        wrong.is_empty(),
        format!(
            "no job went to a server blocked for its workflow ({} blocks, {} dispatches)",
            spans.len(),
            dispatches.len()
        ),
        || format!("{wrong:?}"),
    );
}

fn check_priorities(checks: &mut Checks, records: &[workload::JobRecord]) {
    let reports = workload::by_tenant(records);
    let wait = |name: &str| reports.get(name).map(|r| r.queue_wait.percentile(50.0));
    if let (Some(studio), Some(free)) = (wait("studio"), wait("free-tier")) {
        checks.check(
            studio < free,
            format!(
                "priorities hold under load: studio's median queue wait {} < free-tier's {}",
                ms(studio),
                ms(free)
            ),
        );
    }
}

fn check_faults(
    checks: &mut Checks,
    fleet: &Fleet,
    records: &[workload::JobRecord],
    counters: &crate::monitor::Counters,
    quarantine: &Quarantine,
    log: &EventLog,
    book: &JobBook,
) {
    let blur = records
        .iter()
        .filter(|r| r.workflow == "loadimage-blur-save" && r.server.as_deref() == Some("gpu-2"))
        .count();
    let blur_received = fleet.sim("gpu-2").map_or(0, |sim| {
        sim.stats()
            .for_classes(["ImageBlur", "LoadImage", "SaveImage"])
            .received
    });
    checks.check_with(
        blur == 0 && blur_received == 0,
        "gpu-2 (no ImageBlur node, as its /object_info says) never got the blur workflow",
        || format!("{blur} completed there, {blur_received} received"),
    );
    checks.check(
        counters.server_changes.contains_key("gpu-4 → offline")
            && counters.server_changes.contains_key("gpu-4 → online"),
        "gpu-4's crash took it offline and its restart brought it back online",
    );
    let gpu4_after = records
        .iter()
        .filter(|r| r.server.as_deref() == Some("gpu-4"))
        .count();
    checks.check(
        gpu4_after > 0,
        format!("gpu-4 ran jobs ({gpu4_after} in all)"),
    );
    checks.check(
        counters.retries > 0 && counters.blocks > 0,
        format!(
            "failures were retried elsewhere ({} retries) and blocked per workflow ({} blocks)",
            counters.retries, counters.blocks
        ),
    );
    // The custom strategy: nothing was dispatched to a server while it was quarantined.
    let history = quarantine.history();
    let snapshot = log.snapshot();
    let snapshot = &snapshot;
    let dispatches = timeline::dispatches(snapshot, book);
    let into_quarantine = history
        .iter()
        .flat_map(|q| {
            dispatches.iter().filter(move |d| {
                d.server == q.server.as_str()
                    && snapshot
                        .get(d.seq)
                        .is_some_and(|l| l.instant > q.from && l.instant < q.until)
            })
        })
        .count();
    checks.check(
        into_quarantine == 0,
        format!(
            "the custom Quarantine strategy kept quarantined servers idle ({} quarantines: {})",
            history.len(),
            history
                .iter()
                .map(|q| q.server.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
}
