//! Attributes frames without a prompt id (binary types 1 and 3) to the prompt executing
//! on this client id.

use crate::event::Event;

/// The prompt and node executing on this client id, as seen from the event order.
#[derive(Debug, Default)]
pub(crate) struct Attribution {
    prompt: Option<String>,
    node: Option<String>,
}

impl Attribution {
    /// Updates the state from `event` and fills in missing attribution.
    pub(crate) fn observe(&mut self, event: &mut Event) {
        match event {
            Event::ExecutionStart(d) => {
                self.prompt = Some(d.prompt_id.clone());
                self.node = None;
            }
            Event::Executing(d) => match (&d.node, &d.prompt_id) {
                (None, _) => {
                    self.prompt = None;
                    self.node = None;
                }
                (Some(node), Some(prompt)) => {
                    self.prompt = Some(prompt.clone());
                    self.node = Some(node.clone());
                }
                (Some(node), None) => self.node = Some(node.clone()),
            },
            Event::Progress(d)
                if d.prompt_id.is_some() && d.prompt_id == self.prompt && d.node.is_some() =>
            {
                self.node.clone_from(&d.node);
            }
            Event::Preview(p) => {
                if p.prompt_id.is_none() {
                    p.prompt_id.clone_from(&self.prompt);
                }
                if p.node_id.is_none() {
                    p.node_id.clone_from(&self.node);
                }
            }
            Event::Text(t) if t.prompt_id.is_none() => {
                t.prompt_id.clone_from(&self.prompt);
            }
            _ => {}
        }
    }
}
