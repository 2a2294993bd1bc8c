//! `demo basic`: the educational tour of hash-based failover routing, in four steps, each
//! checked against what the pool reported (and, on simulated servers, what the servers
//! received).
//!
//! 1. Routing: jobs of several workflows spread over the servers.
//! 2. A workflow that fails on one server is blocked there, while that server keeps running
//!    every other workflow.
//! 3. Hashes are structural: the same graph with another value shares the block; another
//!    graph (node class, model file) does not.
//! 4. Cooldown, probation and recovery: when the cooldown ends one job probes the pair; a
//!    failed probe blocks it again for longer; a successful one clears it.

use std::collections::BTreeMap;
use std::time::Duration;

use comfy_pool::hash::diff;
use comfy_pool::prelude::*;
use comfy_pool::{Fit, PairStatus, PoolStats};

use crate::timeline::{self, BlockSpan};
use crate::{
    Checks, Console, DemoError, EventLog, Fleet, HostsArg, JobBook, Result, Table, Workflow,
    describe, setup,
};

/// The cooldown of the demo's strategy (production uses 60 s).
const COOLDOWN: Duration = Duration::from_secs(1);
/// How long the demo waits for anything.
const PATIENCE: Duration = Duration::from_secs(30);

/// Options of `demo basic`.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "demo basic",
    about = "The tour of hash-based failover routing (simulated servers unless --hosts)"
)]
pub struct BasicArgs {
    /// Real servers to use.
    #[command(flatten)]
    pub hosts: HostsArg,
    /// Print every event of the pool.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Everything the steps share.
struct Tour {
    console: Console,
    checks: Checks,
    fleet: Fleet,
    pool: Pool,
    book: JobBook,
    log: EventLog,
    /// The first server: where the failing workflow is sent first.
    first: String,
    flaky: Workflow,
}

/// Runs the tour and returns how many checks passed.
///
/// # Errors
///
/// [`DemoError::ChecksFailed`] when a claim did not hold; setup and pool errors.
pub async fn run(args: &BasicArgs, console: &Console) -> Result<usize> {
    let fleet = match args.hosts.urls()? {
        Some(urls) => Fleet::real(urls),
        None => setup::sim_fleet(&["gpu-a", "gpu-b", "gpu-c"], Duration::from_millis(5)).await?,
    };
    console.line("comfy-pool basic demo: hash-based failover routing");
    console.line(fleet.describe());
    let strategy = SmartStrategy::builder()
        .config(SmartConfig::production())
        .cooldown(COOLDOWN)
        .resource_cooldown(COOLDOWN)
        .cooldown_multiplier(2.0)
        .jitter(0.0)
        .all_blocked(AllBlockedPolicy::FailFast)
        .build()?;
    console.line(format!(
        "strategy: block a (server, workflow) pair after 1 failure for {} s (doubling on each \
         re-block; production default: 60 s), then let one job probe it",
        COOLDOWN.as_secs_f64()
    ));
    let pool = setup::pool(&fleet, Arc::new(strategy), 1)?;
    let book = JobBook::new();
    let log = EventLog::start(&pool, book.clone(), args.verbose.then(|| console.clone()));
    let online = setup::wait_ready(&pool, &log).await?;
    console.line(format!(
        "{online} of {} servers online",
        fleet.servers().len()
    ));
    let first = fleet.ids().into_iter().next().unwrap_or_default();
    let mut tour = Tour {
        console: console.clone(),
        checks: Checks::new(console.clone()),
        fleet,
        pool,
        book,
        log,
        first,
        flaky: Workflow::named("runtime-fail-imagescaleby")?,
    };
    tour.routing().await?;
    tour.failing_workflow().await?;
    tour.hashes().await?;
    tour.recovery().await?;
    tour.capabilities().await?;
    tour.invariants().await?;
    tour.pool.shutdown(ShutdownMode::Drain).await;
    tour.checks.finish()
}

impl Tour {
    fn options(&self) -> JobOptions {
        JobOptions::new().backoff(Backoff::none()).max_attempts(3)
    }

    async fn enqueue(&self, workflow: &Workflow, options: JobOptions) -> Result<JobHandle> {
        self.book.enqueue(&self.pool, workflow, options).await
    }

    fn simulated(&self) -> bool {
        self.fleet.is_simulated()
    }

    /// Jobs of `workflow` the simulated server `id` received so far.
    fn received(&self, id: &str, workflow: &Workflow) -> u64 {
        self.fleet.sim(id).map_or(0, |sim| {
            sim.stats().for_classes(workflow.classes()).received
        })
    }

    fn label(&self, hash: &WorkflowHash) -> String {
        if *hash == self.flaky.hash {
            self.flaky.name.clone()
        } else {
            "other".to_owned()
        }
    }

    async fn print_blocks(&self) -> Result<Vec<PairStatus>> {
        let stats: PoolStats = self.pool.stats().await?;
        if stats.blocks.is_empty() {
            self.console.line("  block table: empty (no pair tracked)");
        } else {
            self.console.line("  block table:");
            let table = setup::block_table(&stats.blocks, |h| self.label(h));
            for line in table.to_string().lines() {
                self.console.line(format!("  {line}"));
            }
        }
        Ok(stats.blocks)
    }

    fn spans_of(&self, hash: WorkflowHash) -> Vec<BlockSpan> {
        timeline::blocks(&self.log.snapshot())
            .into_iter()
            .filter(|s| s.hash == hash)
            .collect()
    }

    /// Step 1: jobs of three workflows spread over the servers.
    async fn routing(&mut self) -> Result<()> {
        self.console.heading("1. Routing: every server takes work");
        let workflows = [
            Workflow::named("invert-save")?,
            Workflow::named("emptyimage-scale-preview")?,
            Workflow::named("getimagesize-savews-binary")?,
        ];
        let mut jobs = Vec::new();
        for round in 0..3 {
            for workflow in &workflows {
                let _ = round;
                jobs.push(self.enqueue(workflow, self.options()).await?);
            }
        }
        self.console.line(format!(
            "enqueued {} jobs of {} workflows at once; each server runs one prompt at a time",
            jobs.len(),
            workflows.len()
        ));
        let mut per_server: BTreeMap<String, usize> = BTreeMap::new();
        let mut completed = 0;
        for job in &jobs {
            if let Ok(output) = job.result().await {
                completed += 1;
                *per_server.entry(output.server.to_string()).or_default() += 1;
            }
        }
        let mut table = Table::new(["server", "jobs run"]);
        for id in self.fleet.ids() {
            table.row([
                id.clone(),
                per_server.get(&id).copied().unwrap_or(0).to_string(),
            ]);
        }
        for line in table.to_string().lines() {
            self.console.line(format!("  {line}"));
        }
        self.checks.check(
            completed == jobs.len(),
            format!("all {} jobs completed", jobs.len()),
        );
        let stats = self.pool.stats().await?;
        let online: Vec<String> = stats
            .servers
            .iter()
            .filter(|s| s.state == ServerState::Online)
            .map(|s| s.id.to_string())
            .collect();
        self.checks.check_with(
            online
                .iter()
                .all(|id| per_server.get(id).is_some_and(|n| *n > 0)),
            format!(
                "the work was spread: each of the {} online servers ran jobs",
                online.len()
            ),
            || format!("jobs per server: {per_server:?}"),
        );
        if self.simulated() {
            let executed: u64 = self
                .fleet
                .servers()
                .iter()
                .filter_map(|s| s.sim.as_ref())
                .map(|sim| sim.stats().prompts_executed)
                .sum();
            self.checks.check(
                executed == jobs.len() as u64,
                format!(
                    "the servers executed exactly {} prompts (no duplicate runs)",
                    jobs.len()
                ),
            );
        }
        Ok(())
    }

    /// Step 2: a workflow fails on one server and is blocked there only for itself.
    async fn failing_workflow(&mut self) -> Result<()> {
        self.console.heading(
            "2. A workflow that fails on a server is blocked there, for that workflow only",
        );
        let first = self.first.clone();
        if let Some(sim) = self.fleet.sim(&first) {
            sim.faults().fail_class("ImageScaleBy");
            self.console.line(format!(
                "simulated fault: on {first}, node ImageScaleBy now fails at run time (think: a \
                 broken custom node or an out-of-memory GPU); the other servers are fine"
            ));
        } else {
            self.console.line(format!(
                "workflow {} scales an 8 px image by 0.01: a stock ComfyUI fails it at run time \
                 on every server",
                self.flaky.name
            ));
        }
        self.console.line(format!(
            "sending {} (hash {}), preferring {first}",
            self.flaky.name,
            describe::short(&self.flaky.hash)
        ));
        let mark = self.log.len();
        let job = self
            .enqueue(&self.flaky, self.options().prefer_server(first.as_str()))
            .await?;
        let result = job.result().await;
        match &result {
            Ok(output) => {
                for attempt in &output.timings.attempts {
                    self.console.line(format!(
                        "  attempt {} on {}: {:?}",
                        attempt.attempt, attempt.server, attempt.outcome
                    ));
                }
                self.console
                    .line(format!("  → completed on {}", output.server));
            }
            Err(error) => self.console.line(format!(
                "  → failed for good: {}",
                describe::first_line(&error.to_string())
            )),
        }
        let spans = self.spans_of(self.flaky.hash);
        let blocked_on: Vec<String> = spans.iter().map(|s| s.server.clone()).collect();
        if spans.is_empty() {
            self.console.line(
                "  the workflow did not fail anywhere, so nothing was blocked (these servers do \
                 not behave like a stock ComfyUI); skipping the block checks",
            );
            return Ok(());
        }
        if self.simulated() {
            self.checks.check(
                blocked_on == [first.clone()],
                format!(
                    "the failure blocked ({first}, {}) and nothing else",
                    self.flaky.name
                ),
            );
            self.checks.check_with(
                result.as_ref().is_ok_and(|o| o.server.as_str() != first),
                "the job was retried at once on a healthy server and completed there",
                || format!("{result:?}"),
            );
        } else {
            self.checks.check(
                result.is_err(),
                format!(
                    "the job failed on every server it tried; blocked on {}",
                    blocked_on.join(", ")
                ),
            );
        }
        self.print_blocks().await?;

        // While blocked: more of the failing workflow, and other workflows on the same server.
        let invert = Workflow::named("invert-save")?;
        let before = self.received(&first, &self.flaky);
        self.console.line(format!(
            "while blocked: 3 more {} jobs (preferring {first}) and 3 invert-save jobs (requiring {first})",
            self.flaky.name
        ));
        let mut flaky_jobs = Vec::new();
        let mut other_jobs = Vec::new();
        for _ in 0..3 {
            other_jobs.push(
                self.enqueue(&invert, self.options().require_server(first.as_str()))
                    .await?,
            );
            flaky_jobs.push(
                self.enqueue(&self.flaky, self.options().prefer_server(first.as_str()))
                    .await?,
            );
        }
        let mut flaky_servers = Vec::new();
        for job in &flaky_jobs {
            flaky_servers.push(match job.result().await {
                Ok(output) => output.server.to_string(),
                Err(error) => format!("failed: {}", describe::first_line(&error.to_string())),
            });
        }
        let mut others_on_first = 0;
        for job in &other_jobs {
            if job.result().await.is_ok_and(|o| o.server.as_str() == first) {
                others_on_first += 1;
            }
        }
        self.console.line(format!(
            "  {} jobs went to: {}",
            self.flaky.name,
            flaky_servers.join(", ")
        ));
        let log = self.log.snapshot();
        let dispatches = timeline::dispatches(&log[mark..], &self.book);
        let spans = self.spans_of(self.flaky.hash);
        let wrong = timeline::dispatches_into_blocks(&spans, &dispatches);
        self.checks.check_with(
            wrong.is_empty(),
            format!(
                "no job of {} was dispatched to a server while blocked there",
                self.flaky.name
            ),
            || format!("dispatched into a block: {wrong:?}"),
        );
        let served: usize = spans
            .iter()
            .filter(|s| s.server == first)
            .map(|s| timeline::others_served_during(s, &dispatches).len())
            .sum();
        self.checks.check_with(
            served > 0 && others_on_first == other_jobs.len(),
            format!("{first} kept serving other workflows during the block ({served} jobs started there)"),
            || format!("{others_on_first} of {} invert-save jobs completed on {first}", other_jobs.len()),
        );
        if self.simulated() {
            let received = self.received(&first, &self.flaky);
            self.checks.check_with(
                received == before,
                format!(
                    "{first} itself received no further {} prompt (simulator's count)",
                    self.flaky.name
                ),
                || format!("received {before} before, {received} after"),
            );
            self.checks.check(
                flaky_servers
                    .iter()
                    .all(|s| *s != first && !s.starts_with("failed")),
                format!("every {} job completed on another server", self.flaky.name),
            );
        }
        Ok(())
    }

    /// Step 3: what shares a block and what does not.
    async fn hashes(&mut self) -> Result<()> {
        self.console
            .heading("3. Hashes are structural: values share a block, another graph does not");
        let recoloured =
            self.flaky
                .with_input("runtime-fail-imagescaleby (green)", "1", "color", 0x00ff00)?;
        let txt2img = Workflow::named("txt2img-checkpoint")?;
        let other_prompt =
            txt2img.with_input("txt2img, another prompt", "6", "text", "a red fox in snow")?;
        let other_seed = txt2img.with_input("txt2img, another seed", "3", "seed", 7)?;
        let other_model = txt2img.with_input(
            "txt2img, another model",
            "4",
            "ckpt_name",
            "sdxl.safetensors",
        )?;
        let other_class = txt2img.with_class("txt2img, another node class", "9", "PreviewImage")?;
        let mut table = Table::new(["workflow", "hash", "same hash as"]);
        let rows = [
            (&self.flaky, None),
            (&recoloured, Some(&self.flaky)),
            (&txt2img, None),
            (&other_prompt, Some(&txt2img)),
            (&other_seed, Some(&txt2img)),
            (&other_model, Some(&txt2img)),
            (&other_class, Some(&txt2img)),
        ];
        for (workflow, base) in rows {
            let same = match base {
                Some(base) if base.hash == workflow.hash => format!("yes: {}", base.name),
                Some(base) => format!("NO: differs from {}", base.name),
                None => "(base)".to_owned(),
            };
            table.row([workflow.name.clone(), describe::short(&workflow.hash), same]);
        }
        for line in table.to_string().lines() {
            self.console.line(format!("  {line}"));
        }
        for change in diff(&txt2img.value, &other_model.value)?
            .into_iter()
            .chain(diff(&txt2img.value, &other_class.value)?)
        {
            self.console
                .line(format!("  why the hash changed: {change}"));
        }
        self.checks.check(
            recoloured.hash == self.flaky.hash
                && other_prompt.hash == txt2img.hash
                && other_seed.hash == txt2img.hash,
            "another color, prompt or seed keeps the hash (so it shares the block)",
        );
        self.checks.check(
            other_model.hash != txt2img.hash && other_class.hash != txt2img.hash,
            "another model file or node class changes the hash (so it has blocks of its own)",
        );

        // Routing proof: the recoloured variant is kept off the blocked server.
        let first = self.first.clone();
        let blocked_now = self
            .pool
            .stats()
            .await?
            .blocks
            .iter()
            .any(|p| p.is_blocked() && p.hash == self.flaky.hash && p.server.as_str() == first);
        if !blocked_now {
            self.console.line(format!(
                "  ({first} is no longer blocked for {}: the routing part of this step is skipped)",
                self.flaky.name
            ));
            return Ok(());
        }
        let mark = self.log.len();
        let before = self.received(&first, &self.flaky);
        let job = self
            .enqueue(&recoloured, self.options().prefer_server(first.as_str()))
            .await?;
        let result = job.result().await;
        match &result {
            Ok(output) => self.console.line(format!(
                "  {} (preferring {first}) ran on {}",
                recoloured.name, output.server
            )),
            Err(error) => self.console.line(format!(
                "  {} was refused: {}",
                recoloured.name,
                describe::first_line(&error.to_string())
            )),
        }
        let log = self.log.snapshot();
        let went_to_first = timeline::dispatches(&log[mark..], &self.book)
            .iter()
            .any(|d| d.server == first && d.hash == Some(self.flaky.hash) && !d.probe);
        self.checks.check(
            !went_to_first,
            format!("the recoloured variant was not sent to {first}: it shares the block"),
        );
        if self.simulated() {
            self.checks.check(
                self.received(&first, &self.flaky) == before && result.is_ok(),
                format!("it completed elsewhere and {first} received nothing of it"),
            );
        }
        Ok(())
    }

    /// Step 4: cooldown, probation, escalation and recovery.
    async fn recovery(&mut self) -> Result<()> {
        self.console.heading("4. Cooldown, probation and recovery");
        let spans = self.spans_of(self.flaky.hash);
        let Some(span) = spans
            .iter()
            .find(|s| s.server == self.first)
            .or(spans.first())
            .cloned()
        else {
            self.console
                .line("  nothing is blocked: nothing to recover");
            return Ok(());
        };
        let server = span.server.clone();
        self.console.line(format!(
            "waiting for the cooldown of ({server}, {}) to end...",
            self.flaky.name
        ));
        let expired = self
            .wait_unblocked(&server, span.from, UnblockReason::Expired)
            .await?;
        self.console.line(format!(
            "  after {:.1} s: cooldown over, {server} is on probation (one job may try it)",
            (expired.at.as_secs_f64() - self.log_at(span.from)).max(0.0)
        ));
        self.print_blocks().await?;

        // A probe that fails: blocked again, for longer.
        let mark = self.log.len();
        let probe = self
            .enqueue(&self.flaky, self.options().prefer_server(server.as_str()))
            .await?;
        let result = probe.result().await;
        let log = self.log.snapshot();
        let probe_dispatch = timeline::dispatches(&log[mark..], &self.book)
            .into_iter()
            .find(|d| d.server == server && d.hash == Some(self.flaky.hash));
        self.checks.check_with(
            probe_dispatch.as_ref().is_some_and(|d| d.probe),
            format!(
                "the next {} job was sent to {server} as the probation probe",
                self.flaky.name
            ),
            || format!("dispatch: {probe_dispatch:?}"),
        );
        let reblock = self
            .spans_of(self.flaky.hash)
            .into_iter()
            .find(|s| s.server == server && s.from > mark);
        match &reblock {
            Some(again) => {
                self.console.line(format!(
                    "  the probe failed ({server} is still broken): blocked again, block #{} for {:.1} s",
                    again.blocked_count, again.seconds
                ));
                self.checks.check_with(
                    again.blocked_count == span.blocked_count + 1 && again.seconds > span.seconds * 1.5,
                    format!(
                        "the failed probe re-blocked the pair with a longer cooldown ({:.1} s → {:.1} s)",
                        span.seconds, again.seconds
                    ),
                    || format!("first {span:?}, then {again:?}"),
                );
            }
            None => {
                self.checks
                    .check(false, "the failed probe re-blocked the pair");
                return Ok(());
            }
        }
        if let Ok(output) = &result {
            self.console.line(format!(
                "  meanwhile the job itself was retried and completed on {}",
                output.server
            ));
        }
        self.print_blocks().await?;
        let Some(again) = reblock else { return Ok(()) };

        let Some(sim) = self.fleet.sim(&server) else {
            self.console.line(
                "  on real servers this workflow fails everywhere, so it stays out (for longer \
                 each time) until it is fixed; pool.strategy().reset_workflow(&hash) forgets it",
            );
            let _ = self.pool.strategy().reset_workflow(&self.flaky.hash);
            let left = self
                .pool
                .stats()
                .await?
                .blocks
                .iter()
                .filter(|p| p.hash == self.flaky.hash)
                .count();
            self.checks.check(
                left == 0,
                "reset_workflow cleared every block of the workflow",
            );
            return Ok(());
        };

        // The server gets fixed; the next probe succeeds and clears the pair.
        sim.faults().clear();
        self.console.line(format!(
            "{server} gets fixed (simulated fault cleared); waiting for the cooldown..."
        ));
        self.wait_unblocked(&server, again.from, UnblockReason::Expired)
            .await?;
        let mark = self.log.len();
        let probe = self
            .enqueue(&self.flaky, self.options().prefer_server(server.as_str()))
            .await?;
        let result = probe.result().await;
        self.checks.check_with(
            result
                .as_ref()
                .is_ok_and(|o| o.server.as_str() == server && o.timings.attempts.len() == 1),
            format!("the next probe ran on {server} and succeeded"),
            || format!("{result:?}"),
        );
        let tracked = self
            .print_blocks()
            .await?
            .iter()
            .any(|p| p.hash == self.flaky.hash && p.server.as_str() == server);
        self.checks.check(
            !tracked,
            format!(
                "the success cleared ({server}, {}) from the block table",
                self.flaky.name
            ),
        );
        let mut back = 0;
        for _ in 0..2 {
            let job = self
                .enqueue(&self.flaky, self.options().require_server(server.as_str()))
                .await?;
            if job
                .result()
                .await
                .is_ok_and(|o| o.server.as_str() == server)
            {
                back += 1;
            }
        }
        let log = self.log.snapshot();
        let probes_after = timeline::dispatches(&log[mark..], &self.book)
            .iter()
            .filter(|d| d.probe)
            .count();
        self.checks.check(
            back == 2 && probes_after == 1,
            format!(
                "{server} takes {} jobs again as usual (no more probes)",
                self.flaky.name
            ),
        );
        Ok(())
    }

    /// The rules that hold over the whole run.
    /// Step 5: a server that lacks a node class never receives the workflow ("lacks", read
    /// from its `/object_info`), unlike a block ("not now", learnt from failures).
    async fn capabilities(&mut self) -> Result<()> {
        self.console
            .heading("5. Capabilities: a server that lacks a node class never gets the workflow");
        let blur = Workflow::named("loadimage-blur-save")?;
        let last = self.fleet.ids().into_iter().last().unwrap_or_default();
        let Some(faults) = self
            .fleet
            .sim(&last)
            .map(comfy_pool::sim::SimServer::faults)
        else {
            // Real servers: report what they are known to have, nothing staged.
            self.print_fit(&blur).await?;
            return Ok(());
        };
        // The node pack with ImageBlur "goes missing" on one server; its socket drops (as in
        // a restart), so the pool reads its /object_info again.
        faults.reject_class("ImageBlur");
        faults.drop_websockets();
        let lacking = loop {
            let fit = self.pool.fit(&blur.value).await?;
            if fit
                .iter()
                .any(|(s, f)| s.as_str() == last && matches!(f, Fit::Lacks(_)))
            {
                break fit;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.print_fit_table(&blur, &lacking);
        let before = self.received(&last, &blur);
        let mut jobs = Vec::new();
        for _ in 0..6 {
            jobs.push(
                self.enqueue(&blur, self.options().prefer_server(last.as_str()))
                    .await?,
            );
        }
        let mut elsewhere = 0;
        for job in &jobs {
            let output = job.result().await?;
            if output.server.as_str() != last && output.timings.attempts.len() == 1 {
                elsewhere += 1;
            }
        }
        let sent = self.received(&last, &blur) - before;
        self.checks.check_with(
            sent == 0 && elsewhere == jobs.len(),
            format!("{last} lacks ImageBlur: it received none of the 6 jobs, each ran elsewhere in one attempt"),
            || format!("{sent} sent to {last}, {elsewhere} ran elsewhere at once"),
        );
        let blocks = self.pool.stats().await?.blocks;
        self.checks.check(
            !blocks
                .iter()
                .any(|p| p.hash == blur.hash && p.server.as_str() == last),
            "a lack is no block: nothing was learnt by failing",
        );
        faults.clear();
        faults.drop_websockets();
        Ok(())
    }

    async fn print_fit(&self, workflow: &Workflow) -> Result<()> {
        let fit = self.pool.fit(&workflow.value).await?;
        self.print_fit_table(workflow, &fit);
        Ok(())
    }

    fn print_fit_table(&self, workflow: &Workflow, fit: &[(ServerId, Fit)]) {
        self.console.line(format!(
            "  who can run {} (from each server's /object_info):",
            workflow.name
        ));
        let mut table = Table::new(["server", "fit"]);
        for (server, fit) in fit {
            let text = match fit {
                Fit::Capable => "capable".to_owned(),
                Fit::Lacks(missing) => {
                    format!("LACKS {} (never sent; not a block)", missing.join("; "))
                }
                _ => "unknown (judged by its answers)".to_owned(),
            };
            table.row([server.to_string(), text]);
        }
        for line in table.to_string().lines() {
            self.console.line(format!("  {line}"));
        }
    }

    async fn invariants(&mut self) -> Result<()> {
        self.console.heading("Over the whole run");
        let log = self.log.snapshot();
        let spans = timeline::blocks(&log);
        let dispatches = timeline::dispatches(&log, &self.book);
        let wrong = timeline::dispatches_into_blocks(&spans, &dispatches);
        self.console.line(format!(
            "  {} events, {} dispatches, {} blocks",
            log.len(),
            dispatches.len(),
            spans.len()
        ));
        self.checks.check_with(
            wrong.is_empty(),
            "no workflow was ever dispatched to a server that blocked it",
            || format!("{wrong:?}"),
        );
        // Each job's terminal event reaches the log shortly after its result: wait for all.
        let ids = self.book.ids();
        for id in &ids {
            self.log
                .wait_for(
                    0,
                    PATIENCE,
                    "the last terminal event",
                    |e| matches!(e, PoolEvent::Job(j) if j.job == *id && j.kind.is_terminal()),
                )
                .await?;
        }
        let log = self.log.snapshot();
        let mut terminal: BTreeMap<&str, usize> = BTreeMap::new();
        for logged in &log {
            if let PoolEvent::Job(job) = &logged.event
                && job.kind.is_terminal()
            {
                *terminal.entry(job.job.as_str()).or_default() += 1;
            }
        }
        let stats = self.pool.stats().await?;
        let once = ids.iter().all(|id| terminal.get(id.as_str()) == Some(&1));
        self.checks.check_with(
            once && terminal.len() == ids.len() && stats.live() == 0,
            format!(
                "every one of the {} jobs ended with exactly one terminal event",
                ids.len()
            ),
            || {
                format!(
                    "terminal events per job: {terminal:?}; {} jobs live",
                    stats.live()
                )
            },
        );
        Ok(())
    }

    /// The log time of event `seq`, in seconds.
    fn log_at(&self, seq: usize) -> f64 {
        self.log
            .snapshot()
            .get(seq)
            .map_or(0.0, |l| l.at.as_secs_f64())
    }

    async fn wait_unblocked(
        &self,
        server: &str,
        after: usize,
        reason: UnblockReason,
    ) -> Result<crate::Logged> {
        let hash = self.flaky.hash;
        self.log
            .wait_for(after, PATIENCE, "the block to end", |event| {
                matches!(event, PoolEvent::Workflow(WorkflowEvent::Unblocked { server: s, hash: h, reason: r, .. })
                    if s.as_str() == server && *h == hash && *r == reason)
            })
            .await
            .map_err(|e| match e {
                DemoError::Timeout(what) => DemoError::Timeout(format!("{what} ({server})")),
                other => other,
            })
    }
}
