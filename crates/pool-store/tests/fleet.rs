//! `PgFleet` against a real PostgreSQL (a fresh database per test): several fleet members,
//! each on a connection pool of its own as separate pool processes would be.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{Fleet, FleetNotice, JobId, JobState, Lease, ServerId, StoreError};
use pool_store::PgFleet;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// A lease no test waits out.
const LONG: Duration = Duration::from_secs(600);

/// How long a test waits for something that happens within milliseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

/// `n` members `p0`, `p1`, … of the fleet on `url`.
async fn members(url: &str, n: usize) -> Vec<PgFleet> {
    let mut fleets = Vec::new();
    for i in 0..n {
        fleets.push(PgFleet::connect(url, format!("p{i}")).await.unwrap());
    }
    fleets
}

/// Servers `gpu-00` … (named so that name order is number order).
fn servers(n: usize) -> Vec<ServerId> {
    (0..n)
        .map(|i| ServerId::new(format!("gpu-{i:02}")))
        .collect()
}

/// The names of the leased servers.
fn names(leases: &[Lease]) -> Vec<&str> {
    leases.iter().map(|l| l.server.as_str()).collect()
}

/// The next notice, within [`PATIENCE`].
async fn next(rx: &mut mpsc::Receiver<FleetNotice>) -> FleetNotice {
    timeout(PATIENCE, rx.recv())
        .await
        .expect("a notice in time")
        .expect("the feed is open")
}

fn accepted(job: &str) -> FleetNotice {
    FleetNotice::Accepted { job: job.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_eight_servers_three_three_two() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 3).await;
    let (a, b, c) = (&fleet[0], &fleet[1], &fleet[2]);
    let all = servers(8);

    // Alone, a process holds everything.
    assert_eq!(a.lease(&all, LONG).await.unwrap().len(), 8);
    // A joiner gets nothing yet (all held); the holder gives up the last half at its next
    // heartbeat, and the joiner takes them at its own.
    assert!(b.lease(&all, LONG).await.unwrap().is_empty());
    assert_eq!(
        names(&a.lease(&all, LONG).await.unwrap()),
        ["gpu-00", "gpu-01", "gpu-02", "gpu-03"]
    );
    assert_eq!(
        names(&b.lease(&all, LONG).await.unwrap()),
        ["gpu-04", "gpu-05", "gpu-06", "gpu-07"]
    );
    // A third: share ceil(8 / 3) = 3.
    assert!(c.lease(&all, LONG).await.unwrap().is_empty());
    assert_eq!(
        names(&a.lease(&all, LONG).await.unwrap()),
        ["gpu-00", "gpu-01", "gpu-02"]
    );
    assert_eq!(
        names(&b.lease(&all, LONG).await.unwrap()),
        ["gpu-04", "gpu-05", "gpu-06"]
    );
    assert_eq!(
        names(&c.lease(&all, LONG).await.unwrap()),
        ["gpu-03", "gpu-07"]
    );
    // Stable from then on.
    for _ in 0..3 {
        for (member, held) in fleet.iter().zip([3, 3, 2]) {
            assert_eq!(member.lease(&all, LONG).await.unwrap().len(), held);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_add_up_to_the_servers() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 3).await;
    let all = servers(4);
    // Not ceil(4 / 3) = 2 each, which would leave the last process with nothing: 2/1/1.
    let mut sizes = Vec::new();
    for _ in 0..3 {
        sizes.clear();
        for member in &fleet {
            sizes.push(member.lease(&all, LONG).await.unwrap().len());
        }
    }
    assert_eq!(sizes, [2, 1, 1]);
}

/// Rounds of concurrent heartbeats, processes leaving and joining again on a fixed schedule:
/// after every round, no server is held by two processes, and a server that changed hands has
/// a greater epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_is_never_held_by_two_processes() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 3).await;
    let all = servers(8);
    let mut present = [true; 3];
    // Per server: the last holder seen and its epoch.
    let mut last: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut held_before: Vec<BTreeSet<String>> = vec![BTreeSet::new(); 3];

    for round in 0..60usize {
        let calls = fleet.iter().enumerate().map(|(i, member)| {
            let leaving = present[i] && (round * 7 + i * 3) % 11 == 0;
            let all = &all;
            async move {
                if leaving {
                    member.leave().await.unwrap();
                    (i, false, Vec::new())
                } else {
                    (i, true, member.lease(all, LONG).await.unwrap())
                }
            }
        });
        let results = futures_util::future::join_all(calls).await;

        let mut holder: BTreeMap<String, usize> = BTreeMap::new();
        for (i, now_present, leases) in results {
            present[i] = now_present;
            let mut held = BTreeSet::new();
            for lease in leases {
                let name = lease.server.as_str().to_owned();
                if let Some(other) = holder.insert(name.clone(), i) {
                    panic!("round {round}: {name} held by p{other} and p{i}");
                }
                match last.get(&name) {
                    Some(&(before, epoch)) if before == i && held_before[i].contains(&name) => {
                        assert_eq!(lease.epoch, epoch, "round {round}: {name} kept by p{i}");
                    }
                    Some(&(_, epoch)) => {
                        assert!(lease.epoch > epoch, "round {round}: {name} taken by p{i}");
                    }
                    None => assert!(lease.epoch >= 1),
                }
                last.insert(name.clone(), (i, lease.epoch));
                held.insert(name);
            }
            held_before[i] = held;
        }
    }

    // Everyone back: within a few rounds the fleet settles at 3/3/2 and covers every server.
    let mut settled = false;
    for _ in 0..6 {
        let mut sizes = Vec::new();
        let mut covered = BTreeSet::new();
        for member in &fleet {
            let leases = member.lease(&all, LONG).await.unwrap();
            sizes.push(leases.len());
            covered.extend(leases.into_iter().map(|l| l.server.as_str().to_owned()));
        }
        sizes.sort_unstable();
        if sizes == [2, 3, 3] && covered.len() == 8 {
            settled = true;
            break;
        }
    }
    assert!(settled, "the fleet did not settle at 3/3/2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_process_loses_its_servers_after_the_ttl() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    let all = servers(4);
    let ttl = Duration::from_secs(1);

    a.lease(&all, ttl).await.unwrap();
    b.lease(&all, ttl).await.unwrap();
    let silent_from = Instant::now();
    let of_a = a.lease(&all, ttl).await.unwrap();
    assert_eq!(names(&of_a), ["gpu-00", "gpu-01"]);
    assert_eq!(
        names(&b.lease(&all, ttl).await.unwrap()),
        ["gpu-02", "gpu-03"]
    );

    // `a` stops heartbeating; `b` keeps on until it holds everything.
    let deadline = Instant::now() + PATIENCE;
    let held = loop {
        let held = b.lease(&all, ttl).await.unwrap();
        if held.len() == 4 {
            break held;
        }
        assert!(Instant::now() < deadline, "b never took a's servers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Not before a's leases ran out (the database's clock and ours agree to a few ms).
    assert!(silent_from.elapsed() + Duration::from_millis(50) >= ttl);
    // Taken over at a greater epoch.
    for lease in &of_a {
        let now = held.iter().find(|l| l.server == lease.server).unwrap();
        assert!(now.epoch > lease.epoch, "{now:?} after {lease:?}");
    }
    // And `a` is forgotten.
    let present: Vec<String> = sqlx::query_scalar("SELECT process FROM fleet_processes")
        .fetch_all(b.pool())
        .await
        .unwrap();
    assert_eq!(present, ["p1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_frees_the_leases_at_once() {
    let url = test_infra::new_pg_database().await;
    // Behind the trait object the engine will hold; one on a pool of the caller's.
    let a: Arc<dyn Fleet> = Arc::new(
        PgFleet::join(PgPool::connect_lazy(&url).unwrap(), "p0")
            .await
            .unwrap(),
    );
    let b: Arc<dyn Fleet> = Arc::new(PgFleet::connect(&url, "p1").await.unwrap());
    assert_eq!((a.process(), b.process()), ("p0", "p1"));
    let all = servers(4);
    a.lease(&all, LONG).await.unwrap();
    b.lease(&all, LONG).await.unwrap();
    a.lease(&all, LONG).await.unwrap();
    assert_eq!(b.lease(&all, LONG).await.unwrap().len(), 2);

    a.leave().await.unwrap();
    // No waiting out a ten-minute lease: the next heartbeat takes them.
    assert_eq!(b.lease(&all, LONG).await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_grows_with_every_change_of_holder() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    let all = servers(2);
    let lease = |name: &str, epoch| Lease::new(ServerId::new(name), epoch);

    let first = vec![lease("gpu-00", 1), lease("gpu-01", 1)];
    assert_eq!(a.lease(&all, LONG).await.unwrap(), first);
    // Renewing keeps the epoch.
    assert_eq!(a.lease(&all, LONG).await.unwrap(), first);
    // b joins; a gives up gpu-01, b takes it.
    assert!(b.lease(&all, LONG).await.unwrap().is_empty());
    assert_eq!(a.lease(&all, LONG).await.unwrap(), [lease("gpu-00", 1)]);
    assert_eq!(b.lease(&all, LONG).await.unwrap(), [lease("gpu-01", 2)]);
    // a leaves; b takes gpu-00.
    a.leave().await.unwrap();
    assert_eq!(
        b.lease(&all, LONG).await.unwrap(),
        [lease("gpu-00", 2), lease("gpu-01", 2)]
    );
    // a comes back: b gives up gpu-01 (the last by name), a takes it.
    assert!(a.lease(&all, LONG).await.unwrap().is_empty());
    assert_eq!(b.lease(&all, LONG).await.unwrap(), [lease("gpu-00", 2)]);
    assert_eq!(a.lease(&all, LONG).await.unwrap(), [lease("gpu-01", 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_no_longer_configured_is_given_up() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let (a, b) = (&fleet[0], &fleet[1]);
    assert_eq!(a.lease(&servers(3), LONG).await.unwrap().len(), 3);
    // a's configuration loses gpu-02; b's still has it (duplicates count once).
    assert_eq!(
        names(&a.lease(&servers(2), LONG).await.unwrap()),
        ["gpu-00", "gpu-01"]
    );
    let mut twice = servers(3);
    twice.extend(servers(3));
    assert_eq!(names(&b.lease(&twice, LONG).await.unwrap()), ["gpu-02"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_typed_errors() {
    let url = test_infra::new_pg_database().await;
    assert!(matches!(
        PgFleet::connect(&url, "").await,
        Err(StoreError::Config(_))
    ));
    assert!(matches!(
        PgFleet::connect(&url, "x".repeat(41)).await,
        Err(StoreError::Config(_))
    ));
    for url in ["mysql://nowhere/db", "sqlite::memory:"] {
        assert!(matches!(
            PgFleet::connect(url, "p0").await,
            Err(StoreError::Config(_))
        ));
    }
    let fleet = members(&url, 1).await;
    assert!(matches!(
        fleet[0]
            .lease(&servers(1), Duration::from_micros(999))
            .await,
        Err(StoreError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_and_keeps_its_password() {
    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://pool:hunter2@127.0.0.1:{port}/fleet");
    let err = timeout(PATIENCE, PgFleet::connect(&url, "p0"))
        .await
        .expect("an answer in time")
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_the_others_and_not_the_sender() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 3).await;
    let mut feeds = Vec::new();
    for member in &fleet {
        feeds.push(member.notices().await.unwrap());
    }

    let changed = FleetNotice::Changed {
        job: JobId::from("job-2"),
        version: 7,
        state: JobState::Running,
    };
    fleet[0].notify(&accepted("job-1")).await.unwrap();
    fleet[1].notify(&changed).await.unwrap();
    fleet[2].notify(&accepted("job-3")).await.unwrap();

    // Each gets the other two in the order sent, never its own (its first notice would be).
    assert_eq!(next(&mut feeds[0]).await, changed);
    assert_eq!(next(&mut feeds[0]).await, accepted("job-3"));
    assert_eq!(next(&mut feeds[1]).await, accepted("job-1"));
    assert_eq!(next(&mut feeds[1]).await, accepted("job-3"));
    assert_eq!(next(&mut feeds[2]).await, accepted("job-1"));
    assert_eq!(next(&mut feeds[2]).await, changed);
    // Nothing else is on its way: a last notice from p0 is the next thing p1 sees.
    fleet[0].notify(&accepted("job-4")).await.unwrap();
    assert_eq!(next(&mut feeds[1]).await, accepted("job-4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_notices_sent_together_arrive_all_and_in_order() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let mut feed = fleet[1].notices().await.unwrap();
    // Far more than one payload holds, one too large among them: the rest go, in order.
    let mut notices: Vec<FleetNotice> = (0..2_000).map(|i| accepted(&format!("job-{i}"))).collect();
    notices.insert(
        700,
        FleetNotice::Cancel {
            job: JobId::from("j".repeat(8_000)),
        },
    );
    let err = fleet[0].notify_all(&notices).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
    notices.remove(700);
    for notice in &notices {
        assert_eq!(&next(&mut feed).await, notice);
    }
    fleet[0].notify(&accepted("last")).await.unwrap();
    assert_eq!(next(&mut feed).await, accepted("last"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_notice_is_refused_and_the_largest_allowed_arrives() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let mut feed = fleet[1].notices().await.unwrap();
    let cancel = |len: usize| FleetNotice::Cancel {
        job: JobId::from("j".repeat(len)),
    };

    let err = fleet[0].notify(&cancel(8_000)).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
    assert!(!err.is_transient());

    // The longest id that is accepted: PostgreSQL takes and delivers it (the check is not
    // stricter than it needs to be by more than a byte, nor looser than the server).
    let mut len = 8_000;
    while let Err(e) = fleet[0].notify(&cancel(len)).await {
        assert!(matches!(e, StoreError::Rejected(_)), "{e:?}");
        len -= 1;
    }
    assert!(len > 7_900, "{len}");
    // The refused ones sent nothing: the first to arrive is the accepted one.
    assert_eq!(next(&mut feed).await, cancel(len));
    let err = fleet[0].notify(&cancel(len + 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_survives_the_loss_of_its_connection() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let mut feed = fleet[1].notices().await.unwrap();
    fleet[0].notify(&accepted("before")).await.unwrap();
    assert_eq!(next(&mut feed).await, accepted("before"));

    let admin = fleet[0].pool();
    let listening = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'comfy-pool fleet p1' AND state = 'idle' \
                     AND query LIKE 'LISTEN%'";
    let pids: Vec<i32> = sqlx::query_scalar(listening)
        .fetch_all(admin)
        .await
        .unwrap();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pids[0])
        .fetch_one(admin)
        .await
        .unwrap();
    assert!(terminated);

    // The feed listens again on a new connection.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now: Vec<i32> = sqlx::query_scalar(listening)
            .fetch_all(admin)
            .await
            .unwrap();
        if now.len() == 1 && now[0] != pids[0] {
            break;
        }
        assert!(Instant::now() < deadline, "never listening again: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fleet[0].notify(&accepted("after")).await.unwrap();
    assert_eq!(next(&mut feed).await, accepted("after"));

    // The sender's own connections go too: its next heartbeat and notice find them lost
    // and run again on new ones (nothing tests a connection before use).
    let others = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid() \
                  AND application_name <> 'comfy-pool fleet p1'";
    let spare = sqlx::PgPool::connect(&url).await.unwrap();
    for _ in 0..2 {
        sqlx::query(others).execute(&spare).await.unwrap();
        fleet[0].lease(&servers(2), LONG).await.unwrap();
        fleet[0].notify(&accepted("again")).await.unwrap();
        assert_eq!(next(&mut feed).await, accepted("again"));
    }
    spare.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_receiver_stops_listening() {
    let url = test_infra::new_pg_database().await;
    let fleet = members(&url, 2).await;
    let feed = fleet[1].notices().await.unwrap();
    let admin = fleet[0].pool();
    let listeners = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'comfy-pool fleet p1'";
    let count: i64 = sqlx::query_scalar(listeners)
        .fetch_one(admin)
        .await
        .unwrap();
    assert_eq!(count, 1);

    drop(feed);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let count: i64 = sqlx::query_scalar(listeners)
            .fetch_one(admin)
            .await
            .unwrap();
        if count == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
