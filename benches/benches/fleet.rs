//! Fleet coordination benchmarks (`pool-store`'s `PgFleet` on the run's PostgreSQL,
//! `test_infra::pg_url`, a fresh database).
//!
//! Three members, each on a connection pool of its own, share 64 servers (settled at
//! 22/21/21 before measuring):
//! - `fleet/lease_round_trip`: one heartbeat (`Fleet::lease`: renew, count, rebalance, return
//!   the leases), the members taking turns.
//! - `fleet/three_heartbeats_at_once`: the three members' heartbeats concurrently.
//! - `fleet/notice_to_another_process`: `Fleet::notify` from one member until the next
//!   member's feed yields it.

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use pool_core::{Fleet, FleetNotice, ServerId};
use pool_store::PgFleet;

const SERVERS: usize = 64;
const MEMBERS: usize = 3;
const TTL: Duration = Duration::from_secs(600);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// Three members on a new database, settled at their fair shares.
async fn fleet(servers: &[ServerId]) -> Vec<PgFleet> {
    let url = tokio::task::spawn_blocking(|| test_infra::fresh_database(&test_infra::pg_url()))
        .await
        .unwrap_or_else(|e| panic!("database: {e}"));
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let member = PgFleet::connect(&url, format!("bench-{i}"))
            .await
            .unwrap_or_else(|e| panic!("join: {e}"));
        members.push(member);
    }
    for _ in 0..3 {
        for member in &members {
            member
                .lease(servers, TTL)
                .await
                .unwrap_or_else(|e| panic!("lease: {e}"));
        }
    }
    members
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let servers: Vec<ServerId> = (0..SERVERS)
        .map(|i| ServerId::new(format!("gpu-{i:02}")))
        .collect();
    let members = rt.block_on(fleet(&servers));
    let mut group = c.benchmark_group("fleet");

    let mut turn = 0usize;
    group.bench_function("lease_round_trip", |b| {
        b.iter(|| {
            let member = &members[turn % MEMBERS];
            turn += 1;
            let held = rt
                .block_on(member.lease(&servers, TTL))
                .unwrap_or_else(|e| panic!("lease: {e}"));
            assert!(held.len() >= SERVERS / MEMBERS, "{}", held.len());
        });
    });

    group.bench_function("three_heartbeats_at_once", |b| {
        b.iter(|| {
            rt.block_on(futures_util::future::try_join_all(
                members.iter().map(|m| m.lease(&servers, TTL)),
            ))
            .unwrap_or_else(|e| panic!("lease: {e}"))
        });
    });

    let mut feed = rt
        .block_on(members[1].notices())
        .unwrap_or_else(|e| panic!("notices: {e}"));
    let notice = FleetNotice::Accepted {
        job: "job-1".into(),
    };
    group.bench_function("notice_to_another_process", |b| {
        b.iter(|| {
            rt.block_on(async {
                members[0]
                    .notify(&notice)
                    .await
                    .unwrap_or_else(|e| panic!("notify: {e}"));
                feed.recv().await
            })
        });
    });
    group.finish();

    rt.block_on(async {
        for member in &members {
            member
                .leave()
                .await
                .unwrap_or_else(|e| panic!("leave: {e}"));
        }
    });
}

criterion_group!(fleet_benches, benches);

fn main() {
    fleet_benches();
    Criterion::default().configure_from_args().final_summary();
}
