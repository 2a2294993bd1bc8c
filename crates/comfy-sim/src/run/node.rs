//! Executing one node: progress, steps, previews, outputs, hang and interrupt.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Run, Stop, input_link};
use crate::files::{StoredFile, split_path};
use crate::plan::image_dims;

/// ComfyUI's largest `batch_size`.
const MAX_BATCH: i64 = 4096;

impl Run<'_> {
    /// Runs one node: progress_state, executing, steps, output, progress_state finished.
    pub(super) async fn node(
        &mut self,
        nodes: &Map<String, Value>,
        id: &str,
        class: &str,
        failure: Option<&(String, String)>,
    ) -> Result<(), Stop> {
        if self.life.is_interrupted() {
            return Err(Stop::Interrupted(id.to_owned()));
        }
        self.progress_state(id, &json!(0.0), &json!(1.0), "running");
        self.to_client(
            "executing",
            json!({"node": id, "display_node": id, "prompt_id": self.prompt_id()}),
        );
        self.life.set_current_node(Some(id));
        self.wait_while_hung().await;
        if self.life.is_interrupted() {
            return Err(Stop::Interrupted(id.to_owned()));
        }
        let flood = self.shared.knobs.lock().ws_flood;
        if !flood.is_off() {
            self.flood_node(id, &flood).await;
            if self.life.is_interrupted() {
                return Err(Stop::Interrupted(id.to_owned()));
            }
        }
        if let Some((node, reason)) = failure
            && node == id
        {
            return Err(Stop::Failed(id.to_owned(), reason.clone()));
        }
        let (time, steps) = {
            let timing = self.shared.timing.lock();
            (timing.exec_time(class), timing.steps(class))
        };
        if class == "SaveImageWebsocket" {
            let (_, _, batch) = image_dims(nodes, input_link(nodes, id, "images").unwrap_or(""));
            // ComfyUI's own batch limit bounds what a catalog without `max` would let through.
            let count = u32::try_from(batch.clamp(1, MAX_BATCH)).unwrap_or(1);
            let png = self.shared.png.clone();
            for i in 0..count {
                self.pause(time / count).await?;
                self.progress_state(id, &json!(i), &json!(count), "running");
                let metadata = json!({
                    "node_id": id, "prompt_id": self.prompt_id(), "display_node_id": id,
                    "parent_node_id": null, "real_node_id": id, "image_type": "image/png",
                });
                self.life.hub.send_preview(self.client(), &png, &metadata);
                self.to_client(
                    "progress",
                    json!({"value": i, "max": count, "prompt_id": self.prompt_id(), "node": id}),
                );
            }
            self.progress_state(id, &json!(count), &json!(count), "finished");
            return Ok(());
        }
        if steps == 0 {
            self.pause(time).await?;
        } else {
            for step in 1..=steps {
                self.pause(time / steps).await?;
                self.progress_state(id, &json!(step), &json!(steps), "running");
                self.to_client(
                    "progress",
                    json!({"value": step, "max": steps, "prompt_id": self.prompt_id(), "node": id}),
                );
            }
        }
        if class == "GetImageSize" {
            let (w, h, b) = image_dims(nodes, input_link(nodes, id, "image").unwrap_or(""));
            self.life
                .hub
                .broadcast_text(id, &format!("width: {w}, height: {h}\n batch size: {b}"));
        }
        if let Some(output) = self.make_output(nodes, id, class) {
            self.emit_output(id, output);
            if flood.executed > 0 {
                self.flood_executed(id, flood.executed).await;
            }
        }
        self.progress_state(id, &json!(1.0), &json!(1.0), "finished");
        Ok(())
    }

    /// Sleeps `time` (tokio time), cut short by an interrupt.
    pub(super) async fn pause(&self, time: Duration) -> Result<(), Stop> {
        if time.is_zero() {
            return Ok(());
        }
        let notified = self.life.interrupt_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.life.is_interrupted() {
            tokio::select! {
                () = tokio::time::sleep(time) => {}
                () = notified => {}
            }
        }
        if self.life.is_interrupted() {
            let node = self.executed_or_current();
            return Err(Stop::Interrupted(node));
        }
        Ok(())
    }

    pub(super) fn executed_or_current(&self) -> String {
        self.progress
            .last_running()
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// Blocks while the `hang` fault is on.
    pub(super) async fn wait_while_hung(&self) {
        loop {
            let changed = self.shared.knobs_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.shared.knobs.lock().hang {
                return;
            }
            changed.await;
        }
    }

    /// The UI output of an output node (images it saved), stored as files.
    pub(super) fn make_output(
        &self,
        nodes: &Map<String, Value>,
        id: &str,
        class: &str,
    ) -> Option<Value> {
        let (kind, prefix) = match class {
            "SaveImage" => {
                let prefix = nodes
                    .get(id)
                    .and_then(|n| n.get("inputs"))
                    .and_then(|i| i.get("filename_prefix"))
                    .and_then(Value::as_str)
                    .unwrap_or("ComfyUI")
                    .to_owned();
                ("output", prefix)
            }
            "PreviewImage" => ("temp", format!("ComfyUI_temp_{}", self.life.temp_prefix)),
            _ => return None,
        };
        let (_, _, batch) = image_dims(nodes, input_link(nodes, id, "images").unwrap_or(""));
        let (subfolder, base) = split_path(&prefix);
        let mut images = Vec::new();
        let mut files = self.shared.files.lock();
        for _ in 0..batch.clamp(1, 64) {
            let counter = files.next_counter(kind, &prefix);
            let filename = format!("{base}_{counter:05}_.png");
            files.put(
                kind,
                subfolder,
                &filename,
                StoredFile::new(self.shared.png.clone()),
            );
            images.push(json!({"filename": filename, "subfolder": subfolder, "type": kind}));
        }
        Some(json!({"images": images}))
    }

    pub(super) fn emit_output(&mut self, id: &str, output: Value) {
        self.to_client(
            "executed",
            json!({"node": id, "display_node": id, "output": output, "prompt_id": self.prompt_id()}),
        );
        self.outputs.insert(id.to_owned(), output);
        self.meta.insert(
            id.to_owned(),
            json!({"node_id": id, "display_node": id, "parent_node": null, "real_node_id": id}),
        );
    }
}
