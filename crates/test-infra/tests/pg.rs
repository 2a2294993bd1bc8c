//! The PostgreSQL helpers against a real server: the run's URL, a database per test, and
//! clusters that are gone once stopped or once their process exits.

use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;
use test_infra::pg::{self, Cluster, PG_URL_VAR};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("could not connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

#[tokio::test]
async fn a_fresh_database_holds_a_table_and_gives_its_row_back() {
    let url = pg::fresh_database(&pg::pg_url());
    let client = connect(&url).await;
    client
        .batch_execute(
            "CREATE TABLE jobs (id bigint PRIMARY KEY, workflow text NOT NULL);
             INSERT INTO jobs VALUES (7, 'txt2img');",
        )
        .await
        .unwrap();
    let row = client
        .query_one("SELECT id, workflow, current_database() FROM jobs", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    assert_eq!(row.get::<_, &str>(1), "txt2img");
    assert!(
        url.ends_with(&format!("/{}", row.get::<_, &str>(2))),
        "{url}"
    );
}

#[tokio::test]
async fn fresh_databases_do_not_see_each_others_tables() {
    let base = pg::pg_url();
    let (a, b) = (pg::fresh_database(&base), pg::fresh_database(&base));
    assert_ne!(a, b);
    connect(&a)
        .await
        .batch_execute("CREATE TABLE only_in_a (x int)")
        .await
        .unwrap();
    let seen: i64 = connect(&b)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 0);
}

#[test]
fn a_bad_url_is_a_typed_error_that_hides_the_password() {
    let err = pg::try_fresh_database("postgres://app:s3cret@127.0.0.1:notaport/db").unwrap_err();
    assert!(matches!(err, pg::PgError::BadUrl { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

#[test]
fn a_cluster_serves_until_stopped_and_leaves_nothing() {
    let started = Instant::now();
    let cluster = Cluster::start().unwrap();
    let start_time = started.elapsed();
    let (dir, port, url) = (cluster.dir().to_path_buf(), cluster.port(), cluster.url());
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
    assert!(dir.join("data").join("postmaster.pid").exists());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let one: i32 = runtime.block_on(async {
        connect(&url)
            .await
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(one, 1);

    let stopping = Instant::now();
    cluster.stop().unwrap();
    eprintln!(
        "cluster started in {start_time:?}, stopped and removed in {:?}",
        stopping.elapsed()
    );
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Run by the next test as a process of its own, without `COMFY_POOL_TEST_PG_URL`: starts the
/// process's cluster, prints its URL, and exits without stopping anything.
#[test]
#[ignore = "a child process of the_process_cluster_is_gone_once_its_process_exits"]
fn child_starts_the_process_cluster_and_exits() {
    println!("child-url {}", pg::pg_url());
}

#[test]
fn the_process_cluster_is_gone_once_its_process_exits() {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_starts_the_process_cluster_and_exits"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env_remove(PG_URL_VAR)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The cluster's watchdog shares the child's stderr: reading it to its end means the
    // watchdog has finished too (server stopped, directory removed).
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout
        .lines()
        .find_map(|line| Some(line.split_once("child-url ")?.1))
        .unwrap_or_else(|| panic!("no URL from the child: {stdout}"));
    let port: u16 = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"));

    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "{url} still answers"
    );
    let prefix = format!("comfy-pool-pg-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
