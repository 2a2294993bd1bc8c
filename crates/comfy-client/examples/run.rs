//! Runs one workflow on one server and prints its events and outputs.
//!
//! ```text
//! cargo run -q -p comfy-client --example run -- --url http://127.0.0.1:8188 [--json] WORKFLOW.json
//! ```
//!
//! With `--json` every line is one JSON object. Exits non-zero with the typed error when
//! the run fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use comfy_client::{Client, Event, RunOptions};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Run one ComfyUI workflow and print its events and outputs")]
struct Args {
    /// Server base URL (http or https, optional path prefix).
    #[arg(long, env = "COMFY_URL")]
    url: String,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Bearer token, if the server (or its proxy) needs one.
    #[arg(long, env = "COMFY_TOKEN")]
    token: Option<String>,
    /// Give up after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// The API-format workflow file.
    workflow: PathBuf,
}

fn event_json(event: &Event) -> Value {
    match event {
        Event::Preview(p) => json!({
            "event": "preview", "node": p.node_id, "prompt_id": p.prompt_id,
            "format": p.format.mime(), "bytes": p.image.len(),
        }),
        Event::Text(t) => json!({"event": "text", "node": t.node_id, "text": t.text}),
        Event::Connected => json!({"event": "connected"}),
        Event::Disconnected { reason } => json!({"event": "disconnected", "reason": reason}),
        Event::Reconnecting {
            attempt,
            delay,
            reason,
        } => json!({
            "event": "reconnecting", "attempt": attempt,
            "delay_ms": delay.as_millis() as u64, "reason": reason,
        }),
        other => match other
            .to_text()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            Some(v) => json!({"event": v["type"], "data": v["data"]}),
            None => json!({"event": format!("{other:?}")}),
        },
    }
}

async fn run(args: &Args) -> comfy_client::Result<()> {
    let text = std::fs::read_to_string(&args.workflow)?;
    let workflow: Value = serde_json::from_str(&text)
        .map_err(|e| comfy_client::Error::InvalidInput(format!("workflow file: {e}")))?;
    let mut builder = Client::builder(&args.url);
    if let Some(token) = &args.token {
        builder = builder.bearer_auth(token.clone());
    }
    let client = builder.build()?;
    let mut options = RunOptions::default();
    if let Some(secs) = args.timeout {
        options = options.total_timeout(Duration::from_secs(secs));
    }
    let mut exec = client.run(workflow, options).await?;
    if args.json {
        println!(
            "{}",
            json!({"event": "submitted", "prompt_id": exec.prompt_id()})
        );
    } else {
        println!("submitted {}", exec.prompt_id());
    }
    while let Some(event) = exec.next_event().await {
        if args.json {
            println!("{}", event_json(&event));
        } else {
            match &event {
                Event::Executing(e) => println!("executing {:?}", e.node),
                Event::Progress(p) => println!("progress {:?} {}/{}", p.node, p.value, p.max),
                Event::Preview(p) => {
                    println!("preview of node {:?} ({} bytes)", p.node_id, p.image.len());
                }
                Event::ProgressState(_) => {}
                other => println!("{}", event_json(other)),
            }
        }
    }
    let out = exec.wait().await?;
    let t = &out.timings;
    if args.json {
        println!(
            "{}",
            json!({
                "event": "outputs",
                "prompt_id": out.prompt_id,
                "outputs": out.outputs,
                "images": out.images().iter().map(|(n, i)| json!({"node": n, "image": i})).collect::<Vec<_>>(),
                "previews": out.previews.len(),
                "ws_outputs": out.ws_outputs.len(),
                "cached_nodes": out.cached_nodes,
                "total_ms": t.total().as_secs_f64() * 1000.0,
                "queue_wait_ms": t.queue_wait().map(|d| d.as_secs_f64() * 1000.0),
                "nodes": t.nodes.iter().map(|n| json!({"node": n.node, "ms": n.duration.as_secs_f64() * 1000.0})).collect::<Vec<_>>(),
            })
        );
    } else {
        for (node, image) in out.images() {
            println!(
                "output of node {node}: {}/{} ({})",
                image.subfolder, image.filename, image.kind
            );
        }
        println!(
            "done in {:.1} ms ({} binary images, {} websocket outputs, cached: {:?})",
            t.total().as_secs_f64() * 1000.0,
            out.previews.len(),
            out.ws_outputs.len(),
            out.cached_nodes
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if args.json {
                let mut err = json!({"event": "error", "error": e.to_string(), "retryable": e.is_retryable()});
                if let Some(v) = e.validation() {
                    err["validation"] = serde_json::to_value(v).unwrap_or_default();
                }
                if let Some(x) = e.execution() {
                    err["execution"] = json!({"node_id": x.node_id, "node_type": x.node_type,
                        "exception_type": x.exception_type, "exception_message": x.exception_message});
                }
                println!("{err}");
            } else {
                eprintln!("error: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    eprintln!("  caused by: {s}");
                    source = s.source();
                }
            }
            ExitCode::FAILURE
        }
    }
}
