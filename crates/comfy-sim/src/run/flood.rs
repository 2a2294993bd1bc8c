//! The websocket flood fault: extra frames per node, each sent once the socket has room.

use axum::extract::ws::Message;
use bytes::{Bytes, BytesMut};
use serde_json::json;

use super::Run;
use crate::faults::WsFlood;
use crate::hub::{Audience, preview_frame, text, text_frame};

/// The PNG signature the flood images start with (the rest is zeros).
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

impl Run<'_> {
    /// Whether a flood must stop: the prompt was interrupted or the server crashed.
    fn flood_cut(&self) -> bool {
        self.life.is_interrupted() || self.life.is_over()
    }

    /// The floods at a node's start: repeated `executing`, text frames, previews.
    pub(super) async fn flood_node(&self, id: &str, flood: &WsFlood) {
        let hub = &self.life.hub;
        if let (Some(client), true) = (self.client(), flood.executing > 0) {
            let executing = text(
                "executing",
                json!({"node": id, "display_node": id, "prompt_id": self.prompt_id()}),
            );
            for _ in 0..flood.executing {
                if self.flood_cut() {
                    return;
                }
                hub.send_paced(Audience::Client(client), |_| executing.clone())
                    .await;
            }
        }
        if flood.texts > 0 {
            let frame = text_frame(id, "sim flood");
            for _ in 0..flood.texts {
                if self.flood_cut() {
                    return;
                }
                hub.send_paced(Audience::All, |_| frame.clone()).await;
            }
        }
        if flood.previews > 0 {
            let image = flood_image(flood.preview_bytes);
            let metadata = json!({
                "node_id": id, "prompt_id": self.prompt_id(), "display_node_id": id,
                "parent_node_id": null, "real_node_id": id, "image_type": "image/png",
            });
            let plain = preview_frame(&image, None);
            let with_metadata = preview_frame(&image, Some(&metadata));
            drop(image);
            let to = Audience::client_or_all(self.client());
            for _ in 0..flood.previews {
                if self.flood_cut() {
                    return;
                }
                hub.send_paced(to, |wants_metadata| {
                    pick(wants_metadata, &with_metadata, &plain)
                })
                .await;
            }
        }
    }

    /// Extra copies of the `executed` message of node `id` (if it has an output).
    pub(super) async fn flood_executed(&self, id: &str, copies: u32) {
        let (Some(client), Some(output)) = (self.client(), self.outputs.get(id)) else {
            return;
        };
        let executed = text(
            "executed",
            json!({"node": id, "display_node": id, "output": output, "prompt_id": self.prompt_id()}),
        );
        for _ in 0..copies {
            if self.flood_cut() {
                return;
            }
            self.life
                .hub
                .send_paced(Audience::Client(client), |_| executed.clone())
                .await;
        }
    }
}

fn pick(wants_metadata: bool, with_metadata: &Message, plain: &Message) -> Message {
    if wants_metadata {
        with_metadata.clone()
    } else {
        plain.clone()
    }
}

/// `bytes` bytes: the PNG signature, then zeros.
fn flood_image(bytes: usize) -> Bytes {
    let mut image = BytesMut::zeroed(bytes);
    let head = bytes.min(PNG_SIGNATURE.len());
    if let Some(start) = image.get_mut(..head) {
        start.copy_from_slice(&PNG_SIGNATURE[..head]);
    }
    image.freeze()
}
