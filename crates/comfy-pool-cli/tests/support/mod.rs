//! Helpers of the integration tests: the `comfy-pool` binary, the demo workflows, a
//! `comfy-pool sim` child process, a child's output lines, and a tiny HTTP client.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A guard against a child that never answers; nothing waits this long when things work.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The `comfy-pool` binary, with a clean environment for the options it reads.
pub fn comfy_pool() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_comfy-pool"));
    command.env_remove("COMFY_HOSTS").env_remove("RUST_LOG");
    command
}

/// Runs `comfy-pool ARGS` to the end.
pub fn run(args: &[&str]) -> Output {
    comfy_pool().args(args).output().unwrap()
}

/// Runs `comfy-pool ARGS` with `input` on standard input.
pub fn run_with_input(args: &[&str], input: &str) -> Output {
    let mut child = comfy_pool()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Standard output and error, for assertion messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A workflow of `examples/workflows/`.
pub fn workflow(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/workflows");
    let path = PathBuf::from(dir).join(format!("{name}.json"));
    assert!(path.is_file(), "{}", path.display());
    path.display().to_string()
}

/// A file under this crate's test scratch directory (tests run in parallel: give each test
/// its own names).
pub fn scratch_file(name: &str, contents: &str) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("comfy-pool-cli")
        .join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// `comfy-pool sim` in a child process; killed when dropped.
pub struct Sim {
    child: Option<Child>,
    /// The base URLs it printed, in order.
    pub urls: Vec<String>,
}

impl Sim {
    /// Starts `count` servers on ephemeral ports with `extra` sim options, and reads their
    /// `url: ` lines.
    pub fn start(count: usize, extra: &[&str]) -> Self {
        let count_arg = count.to_string();
        let mut child = comfy_pool()
            .args(["sim", "--listen", "127.0.0.1:0", "--count", &count_arg])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rx = stdout_lines(&mut child);
        let mut urls = Vec::new();
        while urls.len() < count {
            let line = match rx.recv_timeout(PATIENCE) {
                Ok(Ok(line)) => line,
                other => {
                    let _ = child.kill();
                    panic!("comfy-pool sim printed no url line: {other:?}");
                }
            };
            let url = line
                .strip_prefix("url: ")
                .unwrap_or_else(|| panic!("not a url line: {line:?}"));
            urls.push(url.to_owned());
        }
        Self {
            child: Some(child),
            urls,
        }
    }

    /// The `--hosts` value naming every server.
    pub fn hosts(&self) -> String {
        self.urls.join(",")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the process to end (after a signal) and returns whether it succeeded.
    pub fn wait_success(mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().unwrap();
            let _ = tx.send(status.success());
            child
        });
        match rx.recv_timeout(PATIENCE) {
            Ok(success) => success,
            Err(_) => {
                drop(waiter);
                panic!("comfy-pool sim did not end");
            }
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines `child` writes to its (piped) standard output, as they come; the channel ends
/// with the output.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<std::io::Result<String>> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `method path` on `base` (`http://host:port`) with a bearer key and a JSON body: the status and the body.
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let body = body.map(Value::to_string).unwrap_or_default();
    exchange(base, |authority| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
             Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    })
}

/// `GET path` on `base` (`http://host:port`): the status code and the body.
pub fn get(base: &str, path: &str) -> (u16, String) {
    exchange(base, |authority| {
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
    })
}

/// Sends the request `text` makes for `base`'s authority on a new connection and reads the
/// answer to its end: the status code and the body.
fn exchange(base: &str, text: impl FnOnce(&str) -> String) -> (u16, String) {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(text(authority).as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Checks `condition` every 10 ms until it holds; panics after [`PATIENCE`]. For conditions
/// only another process can make true (it offers no signal to wait on).
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh directory under this crate's test scratch directory (emptied if a killed earlier
/// run left it), removed when dropped.
pub struct ScratchDir {
    /// Its path.
    pub path: PathBuf,
}

impl ScratchDir {
    /// `name` must be unique among the tests (they run in parallel); the directory is named
    /// for it and this process.
    pub fn new(name: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("comfy-pool-cli")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    /// The `--store` URL of an SQLite file `file` in this directory.
    pub fn sqlite(&self, file: &str) -> String {
        format!("sqlite:{}", self.path.join(file).display())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The seed node `3` of `txt2img-checkpoint` ran with, in each entry of a server's
/// `/history`.
pub fn seeds_in_history(base: &str) -> Vec<u64> {
    let (status, body) = get(base, "/history");
    assert_eq!(status, 200, "{body}");
    let history: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&body).unwrap();
    history
        .values()
        .map(|entry| entry["prompt"][2]["3"]["inputs"]["seed"].as_u64().unwrap())
        .collect()
}
