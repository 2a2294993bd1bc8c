//! `cargo xtask bench [--quick] [--report-only] [BENCH...]`: run the criterion benches and
//! print one table of the project's performance figures against their targets.
//!
//! Time-based figures come from criterion's own files,
//! `<target>/criterion/<group>/<id>/new/{benchmark,estimates}.json` (the median point
//! estimate, in ns per iteration; throughput from `benchmark.json`). Figures that are not
//! times (bytes per tracked pair, bytes per queued job, pool/direct ratio, capabilities held)
//! are written by the benches themselves as `<target>/bench-figures/<name>.json` =
//! `{"figure": "...", "value": 12.5, "unit": "bytes"}`; the directory is passed to them in
//! the environment variable `COMFY_BENCH_FIGURES`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::command::{self, Result, cargo, root};

/// The environment variable that tells a bench where to write its non-time figures.
pub const FIGURES_ENV: &str = "COMFY_BENCH_FIGURES";

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Short warm-up and measurement (for CI-sized machines).
    pub quick: bool,
    /// Print the table from the last results without running anything.
    pub report_only: bool,
    /// Only these bench targets (default: all).
    pub benches: Vec<String>,
}

/// Runs the benches (unless `report_only`) and prints the table; fails if a measured figure
/// misses its target.
pub fn run(options: &Options) -> Result {
    let target = target_dir()?;
    let figures_dir = target.join("bench-figures");
    if !options.report_only {
        std::fs::create_dir_all(&figures_dir)
            .map_err(|e| format!("cannot create {}: {e}", figures_dir.display()))?;
        let mut cmd = cargo();
        cmd.args(["bench", "--package", "benches"]);
        for bench in &options.benches {
            cmd.args(["--bench", bench]);
        }
        cmd.env(FIGURES_ENV, &figures_dir);
        if options.quick {
            cmd.args(["--", "--warm-up-time", "0.5", "--measurement-time", "1"]);
        }
        command::run(&mut cmd)?;
    }
    let results = Results::load(&target.join("criterion"), &figures_dir);
    let rows = evaluate(&results);
    println!();
    println!("{}", render(&rows));
    let missed: Vec<&Row> = rows.iter().filter(|r| r.verdict == Verdict::Fail).collect();
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} figure(s) missed their target: {}",
            missed.len(),
            missed
                .iter()
                .map(|r| r.figure)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else what `cargo metadata` says.
fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return Ok(if dir.is_absolute() {
            dir
        } else {
            root().join(dir)
        });
    }
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".to_owned())
}

/// One criterion measurement.
#[derive(Debug, Clone, PartialEq)]
struct Measurement {
    /// Median time per iteration, in ns.
    median_ns: f64,
    /// Elements per iteration, when the bench declared a throughput.
    elements: Option<f64>,
}

impl Measurement {
    /// Elements per second, if the bench declared a throughput.
    fn per_second(&self) -> Option<f64> {
        self.elements
            .filter(|_| self.median_ns > 0.0)
            .map(|e| e * 1e9 / self.median_ns)
    }
}

/// Everything measured: criterion results by full id, and figure files by name.
#[derive(Debug, Default)]
struct Results {
    times: BTreeMap<String, Measurement>,
    figures: BTreeMap<String, (f64, String)>,
}

impl Results {
    fn load(criterion: &Path, figures: &Path) -> Self {
        let mut results = Self::default();
        let mut stack = vec![criterion.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n == "new") {
                        if let Some((id, m)) = read_measurement(&path) {
                            results.times.insert(id, m);
                        }
                    } else {
                        stack.push(path);
                    }
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(figures) {
            for entry in entries.flatten() {
                let path = entry.path();
                // The file is named for the figure: `<name>.json`.
                let (Some(name), Some(json)) = (path.file_stem(), read_json(&path)) else {
                    continue;
                };
                if let Some(value) = json["value"].as_f64() {
                    let unit = json["unit"].as_str().unwrap_or_default().to_owned();
                    results
                        .figures
                        .insert(name.to_string_lossy().into_owned(), (value, unit));
                }
            }
        }
        results
    }

    /// The first measurement whose full id is one of `ids`.
    fn time(&self, ids: &[&str]) -> Option<&Measurement> {
        ids.iter().find_map(|id| self.times.get(*id))
    }
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Reads `new/benchmark.json` (the id and throughput) and `new/estimates.json` (the median).
fn read_measurement(new: &Path) -> Option<(String, Measurement)> {
    let benchmark = read_json(&new.join("benchmark.json"))?;
    let estimates = read_json(&new.join("estimates.json"))?;
    let id = benchmark["full_id"].as_str()?.to_owned();
    let median_ns = estimates["median"]["point_estimate"]
        .as_f64()
        .or_else(|| estimates["mean"]["point_estimate"].as_f64())?;
    let throughput = &benchmark["throughput"];
    let elements = throughput["Elements"]
        .as_f64()
        .or_else(|| throughput["ElementsAndBytes"]["elements"].as_f64());
    Some((
        id,
        Measurement {
            median_ns,
            elements,
        },
    ))
}

/// Whether a figure met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    /// Reported without a target.
    Report,
    /// Not measured (the bench did not run or does not write it yet).
    Missing,
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    figure: &'static str,
    target: &'static str,
    measured: String,
    verdict: Verdict,
}

/// A target: at most or at least a value.
#[derive(Debug, Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
    Below(f64),
    None,
}

impl Target {
    fn verdict(self, value: f64) -> Verdict {
        let ok = match self {
            Self::AtMost(limit) => value <= limit,
            Self::AtLeast(limit) => value >= limit,
            Self::Below(limit) => value < limit,
            Self::None => return Verdict::Report,
        };
        if ok { Verdict::Pass } else { Verdict::Fail }
    }
}

fn row(
    figure: &'static str,
    target_text: &'static str,
    target: Target,
    value: Option<(f64, String)>,
) -> Row {
    match value {
        Some((value, text)) => Row {
            figure,
            target: target_text,
            measured: text,
            verdict: target.verdict(value),
        },
        None => Row {
            figure,
            target: target_text,
            measured: "not measured".to_owned(),
            verdict: Verdict::Missing,
        },
    }
}

/// A duration in ns, printed in the most readable unit.
fn time_text(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

fn time_value(m: Option<&Measurement>) -> Option<(f64, String)> {
    m.map(|m| (m.median_ns, time_text(m.median_ns)))
}

fn figure(results: &Results, name: &str) -> Option<(f64, String)> {
    results
        .figures
        .get(name)
        .map(|(value, unit)| (*value, format!("{value:.1} {unit}").trim_end().to_owned()))
}

/// A ratio figure, printed as a percentage.
fn percent(results: &Results, name: &str) -> Option<(f64, String)> {
    figure(results, name).map(|(ratio, _)| (ratio, format!("{:.1}%", ratio * 100.0)))
}

/// The throughput of a criterion measurement, as `N unit`.
fn per_second(r: &Results, id: &str, unit: &str) -> Option<(f64, String)> {
    r.time(&[id])
        .and_then(Measurement::per_second)
        .map(|per_s| (per_s, format!("{per_s:.0} {unit}")))
}

/// The project's figures, from the issues, against what was measured.
fn evaluate(r: &Results) -> Vec<Row> {
    let sim = r.time(&["sim/trivial_prompts_16_clients"]).and_then(|m| {
        m.per_second()
            .map(|per_s| (per_s, format!("{per_s:.0} prompts/s")))
    });
    // The pool and the bare client driving the same simulated servers at the same concurrency.
    let direct = r
        .time(&["pool_throughput/direct_client_4x1"])
        .and_then(Measurement::per_second);
    let pooled = r
        .time(&["pool_throughput/pool_4x1"])
        .and_then(Measurement::per_second);
    let ratio = figure(r, "pool_vs_direct_ratio")
        .map(|(ratio, _)| (ratio, format!("{:.1}% (interleaved runs)", ratio * 100.0)))
        .or_else(|| {
            let (pooled, direct) = (pooled?, direct?);
            let ratio = pooled / direct * 100.0;
            Some((
                ratio / 100.0,
                format!("{ratio:.0}% ({pooled:.0} vs {direct:.0} jobs/s)"),
            ))
        });
    let sqlite_ratio = figure(r, "pool_sqlite_vs_memory_ratio")
        .map(|(ratio, _)| (ratio, format!("{:.1}% (interleaved runs)", ratio * 100.0)))
        .or_else(|| {
            let memory = r
                .time(&["durable/pool_memory_4x1"])
                .and_then(Measurement::per_second)?;
            let sqlite = r
                .time(&["durable/pool_sqlite_4x1"])
                .and_then(Measurement::per_second)?;
            let ratio = sqlite / memory;
            Some((
                ratio,
                format!("{:.0}% ({sqlite:.0} vs {memory:.0} jobs/s)", ratio * 100.0),
            ))
        });
    let scheduling = figure(r, "schedule_ns_per_job")
        .map(|(ns, _)| (ns, time_text(ns)))
        .or_else(|| time_value(r.time(&["scheduler/dispatch_100k_queued_64_servers"])));
    vec![
        row(
            "hash, 7-node simple-txt2img (from Value)",
            "≤ 0.7 µs",
            Target::AtMost(700.0),
            time_value(r.time(&["hash_value/real/simple-txt2img.json"])),
        ),
        row(
            "hash, 12-node T2I-anime-nova-xl (from Value)",
            "≤ 1.0 µs",
            Target::AtMost(1_000.0),
            time_value(r.time(&["hash_value/real/T2I-anime-nova-xl.json"])),
        ),
        row(
            "hash, 500-node synthetic, 92 KB (from Value)",
            "≤ 100 µs",
            Target::AtMost(100_000.0),
            time_value(r.time(&["hash_value/synthetic/500"])),
        ),
        row(
            "hash, 7-node simple-txt2img (from text)",
            "≤ 8.5 µs",
            Target::AtMost(8_500.0),
            time_value(r.time(&["hash_text/real/simple-txt2img.json"])),
        ),
        row(
            "hash, 12-node T2I-anime-nova-xl (from text)",
            "≤ 13 µs",
            Target::AtMost(13_000.0),
            time_value(r.time(&["hash_text/real/T2I-anime-nova-xl.json"])),
        ),
        row(
            "hash, 500-node synthetic, 92 KB (from text)",
            "≤ 580 µs",
            Target::AtMost(580_000.0),
            time_value(r.time(&["hash_text/synthetic/500"])),
        ),
        row(
            "failover check, 64 servers, 100,000 pairs",
            "≤ 50 ns",
            Target::AtMost(50.0),
            time_value(r.time(&["failover/is_allowed/blocked_pair"])),
        ),
        row(
            "pick among 64 servers",
            "≤ 2 µs",
            Target::AtMost(2_000.0),
            time_value(r.time(&["failover/first_allowed/64_servers_last_free"])),
        ),
        row(
            "memory per tracked pair",
            "≤ 96 bytes",
            Target::AtMost(96.0),
            figure(r, "bytes_per_tracked_pair"),
        ),
        row(
            "simulator, trivial prompts, 16 clients",
            "≥ 2,000 prompts/s",
            Target::AtLeast(2_000.0),
            sim,
        ),
        row(
            "client overhead per trivial prompt",
            "report only",
            Target::None,
            time_value(r.time(&["client_run/sequential"])),
        ),
        row(
            "pool throughput vs direct client (same concurrency)",
            "≥ 98%",
            Target::AtLeast(0.98),
            ratio,
        ),
        row(
            "pool throughput vs direct client, 4 ms per prompt",
            "≥ 98%",
            Target::AtLeast(0.98),
            percent(r, "pool_vs_direct_ratio_4ms"),
        ),
        row(
            "pool throughput vs direct client, 64 zero-time servers",
            "≥ 95%",
            Target::AtLeast(0.95),
            percent(r, "pool_vs_direct_ratio_64"),
        ),
        row(
            "pool throughput vs direct client, queue_ahead(1), zero-time servers",
            "report only",
            Target::None,
            percent(r, "pool_vs_direct_ratio_ahead"),
        ),
        row(
            "pool throughput vs direct client, queue_ahead(1), 4 ms per prompt",
            "report only",
            Target::None,
            percent(r, "pool_vs_direct_ratio_ahead_4ms"),
        ),
        row(
            "pool p50 latency minus direct p50, zero-time servers",
            "≤ 1 ms",
            Target::AtMost(1_000.0),
            figure(r, "pool_p50_minus_direct_us"),
        ),
        row(
            "pool p50 latency minus direct p50, 4 ms per prompt",
            "≤ 1 ms",
            Target::AtMost(1_000.0),
            figure(r, "pool_p50_minus_direct_us_4ms"),
        ),
        row(
            "pool p50 latency minus direct p50, 64 servers",
            "≤ 1 ms",
            Target::AtMost(1_000.0),
            figure(r, "pool_p50_minus_direct_us_64"),
        ),
        row(
            "scheduling cost per job, 100,000 queued, 64 servers",
            "< 20 µs",
            Target::Below(20_000.0),
            scheduling,
        ),
        row(
            "memory per queued job",
            "≤ 1 KiB",
            Target::AtMost(1_024.0),
            figure(r, "bytes_per_queued_job"),
        ),
        row(
            "capabilities: parse a 5 MB /object_info",
            "≤ 50 ms",
            Target::AtMost(50_000_000.0),
            time_value(r.time(&["caps/parse_object_info_5mb"])),
        ),
        row(
            "capabilities: memory held for a 5 MB /object_info",
            "≤ 1 MiB",
            Target::AtMost(1_048_576.0),
            figure(r, "caps_retained_bytes"),
        ),
        row(
            "capabilities: cached verdict (server, version, hash)",
            "≤ 100 ns",
            Target::AtMost(100.0),
            time_value(r.time(&["caps/verdict_cache_hit"])),
        ),
        row(
            "service: HTTP submit -> dispatch, p50",
            "≤ 1 ms",
            Target::AtMost(1_000.0),
            figure(r, "server_submit_dispatch_p50_us"),
        ),
        row(
            "service: RSS with 1,000 SSE subscribers",
            "≤ 100 MiB",
            Target::AtMost(100.0),
            figure(r, "server_sse_1000_rss_mib"),
        ),
        row(
            "store: durable enqueue, SQLite file, 64 callers",
            "≥ 5,000 jobs/s",
            Target::AtLeast(5_000.0),
            per_second(r, "store/sqlite_insert_64_callers", "jobs/s"),
        ),
        row(
            "store: write-ahead update, SQLite file, 64 callers",
            "report only",
            Target::None,
            per_second(r, "store/sqlite_update_64_callers", "updates/s"),
        ),
        row(
            "store: SQLite bytes on disk per finished job (7 nodes)",
            "report only",
            Target::None,
            figure(r, "store_bytes_per_finished_job"),
        ),
        row(
            "pool: durable enqueue through Pool::enqueue, SQLite file, 64 callers",
            "≥ 5,000 jobs/s",
            Target::AtLeast(5_000.0),
            per_second(r, "durable/pool_enqueue_sqlite_64_callers", "jobs/s"),
        ),
        row(
            "pool throughput with the SQLite store vs in-memory (4 zero-time sims)",
            "≥ 95%",
            Target::AtLeast(0.95),
            sqlite_ratio,
        ),
        row(
            "pool throughput, SQLite with synchronous=normal vs in-memory (4 zero-time sims)",
            "report only",
            Target::None,
            figure(r, "pool_sqlite_normal_vs_memory_ratio")
                .map(|(ratio, _)| (ratio, format!("{:.1}% (interleaved runs)", ratio * 100.0))),
        ),
        row(
            "pool with the SQLite store: its writer thread's CPU per job",
            "report only",
            Target::None,
            figure(r, "pool_sqlite_writer_cpu_per_job"),
        ),
        row(
            "pool with the SQLite store: cores busy (of 2)",
            "report only",
            Target::None,
            figure(r, "pool_sqlite_cores_used"),
        ),
        row(
            "store: durable enqueue, PostgreSQL, 64 callers",
            "report only",
            Target::None,
            per_second(r, "store/postgres_insert_64_callers", "jobs/s"),
        ),
        row(
            "store: write-ahead update, PostgreSQL, 64 callers",
            "report only",
            Target::None,
            per_second(r, "store/postgres_update_64_callers", "updates/s"),
        ),
        row(
            "fleet: lease round trip (heartbeat), 3 processes, 64 servers",
            "report only",
            Target::None,
            time_value(r.time(&["fleet/lease_round_trip"])),
        ),
        row(
            "fleet: notice to another process (NOTIFY to LISTEN)",
            "report only",
            Target::None,
            time_value(r.time(&["fleet/notice_to_another_process"])),
        ),
        row(
            "fleet: claimed jobs/s, three pools on PostgreSQL, 4 zero-time sims",
            "≥ 1,000 jobs/s",
            Target::AtLeast(1_000.0),
            figure(r, "fleet_claimed_jobs_per_s"),
        ),
        row(
            "fleet: dispatch latency PostgreSQL adds (enqueue -> started p50 vs in-memory)",
            "≤ 2 ms",
            Target::AtMost(2_000.0),
            figure(r, "fleet_dispatch_added_p50_us"),
        ),
    ]
}

fn render(rows: &[Row]) -> String {
    let header = ["figure", "target", "measured", "result"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let verdict = match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Report => "-",
                Verdict::Missing => "missing",
            };
            [
                r.figure.to_owned(),
                r.target.to_owned(),
                r.measured.clone(),
                verdict.to_owned(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: [&str; 4]| {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = vec![line(header)];
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push(format!("|-{}-|", rule.join("-|-")));
    for row in &cells {
        out.push(line([&row[0], &row[1], &row[2], &row[3]]));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(times: &[(&str, f64, Option<f64>)], figures: &[(&str, f64)]) -> Results {
        Results {
            times: times
                .iter()
                .map(|(id, ns, elements)| {
                    (
                        (*id).to_owned(),
                        Measurement {
                            median_ns: *ns,
                            elements: *elements,
                        },
                    )
                })
                .collect(),
            figures: figures
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value, "bytes".to_owned())))
                .collect(),
        }
    }

    fn verdict(rows: &[Row], prefix: &str) -> Verdict {
        rows.iter()
            .find(|r| r.figure.starts_with(prefix))
            .map(|r| r.verdict)
            .unwrap_or(Verdict::Missing)
    }

    #[test]
    fn targets_are_checked_in_the_right_direction() {
        let r = results(
            &[
                ("hash_value/real/simple-txt2img.json", 650.0, None),
                ("hash_value/real/T2I-anime-nova-xl.json", 1_200.0, None),
                ("hash_text/real/simple-txt2img.json", 9_000.0, None),
                ("hash_text/synthetic/500", 400_000.0, None),
                (
                    "sim/trivial_prompts_16_clients",
                    500_000_000.0,
                    Some(2_000.0),
                ),
                ("pool_throughput/direct_client_4x1", 4_000_000.0, Some(16.0)),
                ("pool_throughput/pool_4x1", 4_200_000.0, Some(16.0)),
                ("caps/verdict_cache_hit", 40.0, None),
            ],
            &[
                ("bytes_per_tracked_pair", 97.0),
                ("caps_retained_bytes", 2_000_000.0),
            ],
        );
        let rows = evaluate(&r);
        assert_eq!(verdict(&rows, "hash, 7-node"), Verdict::Pass);
        assert_eq!(verdict(&rows, "hash, 12-node"), Verdict::Fail);
        assert_eq!(
            verdict(&rows, "hash, 7-node simple-txt2img (from text)"),
            Verdict::Fail
        );
        assert_eq!(
            verdict(&rows, "hash, 500-node synthetic, 92 KB (from text)"),
            Verdict::Pass
        );
        assert_eq!(
            verdict(&rows, "hash, 500-node synthetic, 92 KB (from Value)"),
            Verdict::Missing
        );
        // 2000 prompts in 0.5 s = 4000 prompts/s.
        assert_eq!(verdict(&rows, "simulator"), Verdict::Pass);
        // 4.0 / 4.2 = 95 % of the direct throughput: short of 98 %.
        assert_eq!(verdict(&rows, "pool throughput"), Verdict::Fail);
        assert_eq!(
            verdict(&rows, "pool throughput vs direct client, 4 ms"),
            Verdict::Missing
        );
        assert_eq!(verdict(&rows, "memory per tracked"), Verdict::Fail);
        assert_eq!(verdict(&rows, "memory per queued"), Verdict::Missing);
        assert_eq!(verdict(&rows, "client overhead"), Verdict::Missing);
        assert_eq!(verdict(&rows, "capabilities: cached"), Verdict::Pass);
        assert_eq!(verdict(&rows, "capabilities: memory"), Verdict::Fail);
        assert_eq!(verdict(&rows, "capabilities: parse"), Verdict::Missing);
        assert_eq!(
            verdict(&rows, "store: durable enqueue, SQLite"),
            Verdict::Missing
        );
    }

    #[test]
    fn store_throughput_is_checked_per_second() {
        // 1,024 jobs in 250 ms = 4,096 jobs/s: below target; in 100 ms: above.
        let slow = results(
            &[(
                "store/sqlite_insert_64_callers",
                250_000_000.0,
                Some(1_024.0),
            )],
            &[],
        );
        let fast = results(
            &[
                (
                    "store/sqlite_insert_64_callers",
                    100_000_000.0,
                    Some(1_024.0),
                ),
                (
                    "store/sqlite_update_64_callers",
                    100_000_000.0,
                    Some(1_024.0),
                ),
            ],
            &[("store_bytes_per_finished_job", 4_000.0)],
        );
        let (slow, fast) = (evaluate(&slow), evaluate(&fast));
        assert_eq!(
            verdict(&slow, "store: durable enqueue, SQLite"),
            Verdict::Fail
        );
        assert_eq!(
            verdict(&fast, "store: durable enqueue, SQLite"),
            Verdict::Pass
        );
        assert_eq!(
            verdict(&fast, "store: write-ahead update, SQLite"),
            Verdict::Report
        );
        assert_eq!(verdict(&fast, "store: SQLite bytes"), Verdict::Report);
        assert_eq!(
            verdict(&fast, "store: durable enqueue, PostgreSQL"),
            Verdict::Missing
        );
    }

    #[test]
    fn criterion_files_are_read() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let new = dir.join("criterion/failover/is_allowed_blocked_pair/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"failover","function_id":"is_allowed/blocked_pair","full_id":"failover/is_allowed/blocked_pair","throughput":null}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":31.0},"median":{"point_estimate":30.5}}"#,
        )
        .unwrap();
        let figures = dir.join("bench-figures");
        std::fs::create_dir_all(&figures).unwrap();
        std::fs::write(
            figures.join("bytes_per_queued_job.json"),
            r#"{"figure":"memory per queued job","value":512.0,"unit":"bytes"}"#,
        )
        .unwrap();
        let r = Results::load(&dir.join("criterion"), &figures);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            r.time(&["failover/is_allowed/blocked_pair"])
                .map(|m| m.median_ns),
            Some(30.5)
        );
        let rows = evaluate(&r);
        assert_eq!(verdict(&rows, "failover check"), Verdict::Pass);
        assert_eq!(verdict(&rows, "memory per queued"), Verdict::Pass);
    }
}
