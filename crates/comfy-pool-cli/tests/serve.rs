//! `comfy-pool serve` and `comfy-pool keys`, run as the real binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};
use support::{PATIENCE, comfy_pool, run, scratch_file, text, wait_until};

/// `method path` with a bearer key and a JSON body: the status and the body.
fn request(base: &str, method: &str, path: &str, key: &str, body: Option<&Value>) -> (u16, String) {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
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
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        while lines.len() < 4 {
            match rx.recv_timeout(PATIENCE) {
                Ok(Ok(line)) => lines.push(line),
                other => {
                    let _ = child.kill();
                    panic!("comfy-pool serve printed {lines:?} then {other:?}");
                }
            }
        }
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
