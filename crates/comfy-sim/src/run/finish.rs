//! The end of a run: history entry, terminal message, `status`, `executing(null)`.

use serde_json::{Map, Value, json};

use super::{Run, Stop, class_of, now_ms};
use crate::stats::Outcome;

impl Run<'_> {
    /// Writes history, then sends the terminal message, `status` and `executing(null)`.
    pub(super) fn finish(mut self, nodes: &Map<String, Value>, stop: Option<Stop>) {
        let (kind, data, outcome) = match stop {
            None => (
                "execution_success",
                json!({"prompt_id": self.prompt_id(), "timestamp": now_ms()}),
                Outcome::Success,
            ),
            Some(Stop::Interrupted(node)) => (
                "execution_interrupted",
                json!({
                    "prompt_id": self.prompt_id(), "node_id": node,
                    "node_type": class_of(nodes, &node), "executed": self.executed,
                    "timestamp": now_ms(),
                }),
                Outcome::Interrupted,
            ),
            Some(Stop::Failed(node, message)) => (
                "execution_error",
                self.error_data(nodes, &node, &message),
                Outcome::Error,
            ),
        };
        self.remember(kind, &data);
        let success = outcome == Outcome::Success;
        let entry = json!({
            "prompt": self.item.wire(),
            "outputs": self.outputs,
            "status": {
                "status_str": if success { "success" } else { "error" },
                "completed": success,
                "messages": self.messages,
            },
            "meta": self.meta,
        });
        self.life.finish(self.prompt_id(), entry);
        self.shared
            .record_outcome(self.life, &self.item.keys, outcome);
        if outcome == Outcome::Interrupted {
            self.to_client_or_all(kind, data);
        } else {
            self.to_client(kind, data);
        }
        self.life.broadcast_status();
        self.to_client(
            "executing",
            json!({"node": null, "prompt_id": self.prompt_id()}),
        );
        self.messages.clear();
    }

    fn error_data(&self, nodes: &Map<String, Value>, node: &str, message: &str) -> Value {
        let mut current_inputs = Map::new();
        if let Some(inputs) = nodes
            .get(node)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
        {
            for (name, value) in inputs {
                let shown = if crate::validate::as_link(value).is_some() {
                    Value::from("tensor([[[[0.1451, 0.7255, 0.5765]]]])")
                } else {
                    value.clone()
                };
                current_inputs.insert(name.clone(), json!([shown]));
            }
        }
        let comfy_frames = self.shared.version.execution_traceback();
        let mut current_outputs: Vec<String> = self.executed.clone();
        current_outputs.push(node.to_owned());
        json!({
            "prompt_id": self.prompt_id(),
            "node_id": node,
            "node_type": class_of(nodes, node),
            "executed": self.executed,
            "exception_message": format!("{message}\n"),
            "exception_type": "RuntimeError",
            "traceback": [
                comfy_frames[0],
                comfy_frames[1],
                format!("  File \"/opt/ComfyUI/comfy_sim.py\", line 1, in {}\n    raise RuntimeError({message:?})\n", class_of(nodes, node)),
            ],
            "current_inputs": current_inputs,
            "current_outputs": current_outputs,
            "timestamp": now_ms(),
        })
    }
}
