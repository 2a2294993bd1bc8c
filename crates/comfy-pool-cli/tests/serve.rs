//! `comfy-pool serve` and `comfy-pool keys`, run as the real binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::process::{Child, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};
use support::{PATIENCE, comfy_pool, request, run, scratch_file, stdout_lines, text, wait_until};

/// Reads `count` lines from a child's standard output (killing it if they do not come).
fn read_lines(child: &mut Child, count: usize) -> Vec<String> {
    let rx = stdout_lines(child);
    let mut lines = Vec::new();
    while lines.len() < count {
        match rx.recv_timeout(PATIENCE) {
            Ok(Ok(line)) => lines.push(line),
            other => {
                let _ = child.kill();
                panic!("the child printed {lines:?} then {other:?}");
            }
        }
    }
    lines
}

/// `comfy-pool serve --demo` in a child process, with the lines it printed.
struct Served {
    child: Option<Child>,
    url: String,
    admin: String,
    tenants: Vec<(String, String)>,
}

impl Served {
    fn start() -> Self {
        let mut child = comfy_pool()
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = read_lines(&mut child, 4);
        let field = |i: usize, prefix: &str| {
            lines[i]
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{:?} is not {prefix}", lines[i]))
                .to_owned()
        };
        let tenants = (2..4)
            .map(|i| {
                let rest = field(i, "tenant-key: ");
                let (name, key) = rest.split_once(' ').unwrap();
                (name.to_owned(), key.to_owned())
            })
            .collect();
        Self {
            url: field(0, "url: "),
            admin: field(1, "admin-key: "),
            tenants,
            child: Some(child),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn workflow() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cli"}}
    })
}

#[test]
fn serve_demo_prints_its_keys_runs_jobs_and_stops_on_sigterm() {
    let mut served = Served::start();
    assert!(
        served.url.starts_with("http://127.0.0.1:"),
        "{}",
        served.url
    );
    assert_eq!(
        served
            .tenants
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["demo-a", "demo-b"]
    );
    wait_until("readiness", || {
        request(&served.url, "GET", "/readyz", "", None).0 == 200
    });
    let key = served.tenants[0].1.clone();
    let (status, body) = request(
        &served.url,
        "POST",
        "/v1/jobs?wait=30",
        &key,
        Some(&json!({"workflow": workflow()})),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["job"]["state"], "completed");
    assert_eq!(answer["job"]["tenant"], "demo-a");
    let (status, _) = request(&served.url, "GET", "/v1/admin/stats", &key, None);
    assert_eq!(status, 403);
    let (status, body) = request(&served.url, "GET", "/v1/admin/stats", &served.admin, None);
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["servers"].as_array().unwrap().len(), 3);

    #[cfg(unix)]
    {
        let mut child = served.child.take().unwrap();
        let pid = child.id();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().unwrap());
        });
        let status = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("comfy-pool serve ({pid}) did not stop on SIGTERM"));
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn serve_refuses_a_bad_configuration_naming_the_key() {
    let config = scratch_file(
        "bad-serve.toml",
        "admin_key = \"an-admin-key-long-enough\"\n[limits]\nbody_bytes = \"big\"\n",
    );
    let output = run(&["serve", "--config", &config]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("limits.body_bytes"), "{stderr}");
    assert!(stderr.contains("bad-serve.toml"), "{stderr}");
    let output = run(&["serve"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--config or --demo is required"
    );
}

#[test]
fn keys_new_prints_a_key_once_with_its_hash() {
    let output = run(&["keys", "new", "--tenant", "team-a", "--store", "memory:"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let key = field("key: ");
    assert!(key.starts_with("cpk_"));
    assert_eq!(field("sha256: "), pool_server::key_hash(&key));
    assert_eq!(stdout.matches(&key).count(), 1, "shown once");
    let output = run(&["keys", "new", "--tenant", "no spaces", "--store", "memory:"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["keys", "list"]);
    assert_eq!(output.status.code(), Some(2), "a store is needed");
}

/// `comfy-pool serve --config FILE` in a child process; its base URL.
fn serve_config(config: &str) -> (Child, String) {
    let mut child = comfy_pool()
        .args(["serve", "--config", config])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let line = read_lines(&mut child, 1).remove(0);
    let url = line.strip_prefix("url: ").unwrap().to_owned();
    (child, url)
}

fn job_state(url: &str, key: &str, id: &str) -> String {
    let (status, body) = request(url, "GET", &format!("/v1/jobs/{id}"), key, None);
    assert_eq!(status, 200, "{id}: {body}");
    let job: Value = serde_json::from_str(&body).unwrap();
    job["state"].as_str().unwrap().to_owned()
}

#[test]
fn a_service_killed_mid_batch_restarts_on_its_sqlite_store_with_no_job_lost() {
    let sims = support::Sim::start(2, &["--exec-ms", "300"]);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-crash");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = "cpk_00000001_crash-test-tenant-key";
    let servers: String = sims
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| format!("[[servers]]\nid = \"sim-{}\"\nurl = \"{url}\"\n", i + 1))
        .collect();
    let config = scratch_file(
        "crash-serve.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\nstore = \"sqlite:{}\"\n\
             admin_key = \"crash-admin-key-0123456789\"\nhealth_check_interval = \"1s\"\n\
             {servers}[[tenants]]\nname = \"team-a\"\nkeys = [\"{}\"]\n\
             [limits]\nsubmissions_per_second = 1000.0\nburst = 1000\n",
            dir.join("pool.db").display(),
            pool_server::key_hash(key),
        ),
    );
    let (mut first, url) = serve_config(&config);
    wait_until("readiness", || {
        request(&url, "GET", "/readyz", "", None).0 == 200
    });
    let ids: Vec<String> = (0..8).map(|i| format!("crash-{i}")).collect();
    for id in &ids {
        let (status, body) = request(
            &url,
            "POST",
            "/v1/jobs",
            key,
            Some(&json!({"workflow": workflow(), "id": id})),
        );
        assert_eq!(status, 202, "{body}");
    }
    wait_until("a job running", || {
        job_state(&url, key, &ids[0]) == "running"
    });
    first.kill().unwrap(); // SIGKILL: no shutdown, no detach.
    first.wait().unwrap();

    let (mut second, url) = serve_config(&config);
    wait_until("readiness after the restart", || {
        request(&url, "GET", "/readyz", "", None).0 == 200
    });
    for id in &ids {
        wait_until(&format!("{id} to end"), || {
            !matches!(
                job_state(&url, key, id).as_str(),
                "queued" | "running" | "retry_wait"
            )
        });
        assert_eq!(job_state(&url, key, id), "completed", "{id}");
    }
    let (status, body) = request(&url, "GET", "/v1/jobs?limit=100", key, None);
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_str(&body).unwrap();
    let mut listed: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "each job once"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}
