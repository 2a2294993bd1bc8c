//! How many bytes an event keeps alive, for the memory limit of a run: its inline size plus
//! every heap allocation it owns, with a per-entry overhead for maps. An estimate on the
//! high side: parsed JSON takes up to 30 times the bytes of its text (`[0,0,...]`), so
//! frame lengths would not do.

use std::collections::BTreeMap;
use std::mem::size_of;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{
    Event, Executed, Executing, ExecutionCached, ExecutionError, ExecutionInterrupted,
    ExecutionStart, ExecutionSuccess, NodeProgress, NodeText, Preview, PreviewMetadata, Progress,
    ProgressState, Status, UnknownBinary, UnknownMessage,
};
use crate::types::NodeOutput;

/// Bookkeeping per map entry besides the key and value (hash, index, tree node).
const ENTRY_OVERHEAD: usize = 32;

/// Heap bytes a value owns, not counting its own inline size.
pub(crate) trait HeapSize {
    /// The owned heap bytes.
    fn heap_size(&self) -> usize;
}

impl HeapSize for String {
    fn heap_size(&self) -> usize {
        self.capacity()
    }
}

impl HeapSize for Bytes {
    fn heap_size(&self) -> usize {
        self.len()
    }
}

impl<T: HeapSize> HeapSize for Option<T> {
    fn heap_size(&self) -> usize {
        self.as_ref().map_or(0, HeapSize::heap_size)
    }
}

impl<T: HeapSize> HeapSize for Vec<T> {
    fn heap_size(&self) -> usize {
        self.capacity() * size_of::<T>() + self.iter().map(HeapSize::heap_size).sum::<usize>()
    }
}

impl HeapSize for Value {
    fn heap_size(&self) -> usize {
        match self {
            Self::Null | Self::Bool(_) | Self::Number(_) => 0,
            Self::String(s) => s.heap_size(),
            Self::Array(items) => items.heap_size(),
            Self::Object(map) => map.heap_size(),
        }
    }
}

impl HeapSize for Map<String, Value> {
    fn heap_size(&self) -> usize {
        let entry = ENTRY_OVERHEAD + size_of::<String>() + size_of::<Value>();
        self.iter()
            .map(|(k, v)| entry + k.heap_size() + v.heap_size())
            .sum()
    }
}

impl<V: HeapSize> HeapSize for BTreeMap<String, V> {
    fn heap_size(&self) -> usize {
        let entry = ENTRY_OVERHEAD + size_of::<String>() + size_of::<V>();
        self.iter()
            .map(|(k, v)| entry + k.heap_size() + v.heap_size())
            .sum()
    }
}

impl HeapSize for NodeOutput {
    fn heap_size(&self) -> usize {
        self.0.heap_size()
    }
}

/// `HeapSize` as the sum of the listed fields' (fields without heap data are left out).
macro_rules! heap_of_fields {
    ($($ty:ty { $($field:ident),* $(,)? })*) => {
        $(
            impl HeapSize for $ty {
                fn heap_size(&self) -> usize {
                    0 $(+ self.$field.heap_size())*
                }
            }
        )*
    };
}

heap_of_fields! {
    Status { sid, extra }
    ExecutionStart { prompt_id, extra }
    ExecutionCached { nodes, prompt_id, extra }
    Executing { node, display_node, prompt_id, extra }
    Progress { prompt_id, node, extra }
    ProgressState { prompt_id, nodes, extra }
    NodeProgress { state, node_id, prompt_id, display_node_id, parent_node_id, real_node_id, extra }
    Executed { node, display_node, output, prompt_id, extra }
    ExecutionSuccess { prompt_id, extra }
    ExecutionError {
        prompt_id, node_id, node_type, executed, exception_message, exception_type,
        traceback, current_inputs, current_outputs, extra,
    }
    ExecutionInterrupted { prompt_id, node_id, node_type, executed, extra }
    PreviewMetadata {
        node_id, prompt_id, display_node_id, parent_node_id, real_node_id, image_type, extra,
    }
    Preview { metadata, image, prompt_id, node_id }
    NodeText { node_id, text, prompt_id }
    UnknownMessage { kind, data }
    UnknownBinary { payload }
}

impl Event {
    /// The bytes this event keeps alive (inline size included), estimated on the high side.
    pub(crate) fn retained_size(&self) -> usize {
        let heap = match self {
            Self::Status(d) => d.heap_size(),
            Self::ExecutionStart(d) => d.heap_size(),
            Self::ExecutionCached(d) => d.heap_size(),
            Self::Executing(d) => d.heap_size(),
            Self::Progress(d) => d.heap_size(),
            Self::ProgressState(d) => d.heap_size(),
            Self::Executed(d) => d.heap_size(),
            Self::ExecutionSuccess(d) => d.heap_size(),
            Self::ExecutionError(d) => d.heap_size(),
            Self::ExecutionInterrupted(d) => d.heap_size(),
            Self::Notification(d) => d.value.heap_size() + d.id.heap_size() + d.extra.heap_size(),
            Self::FeatureFlags(d) => d.extra.heap_size(),
            Self::Preview(d) => d.heap_size(),
            Self::Text(d) => d.heap_size(),
            Self::Unknown(d) => d.heap_size(),
            Self::UnknownBinary(d) => d.heap_size(),
            Self::Disconnected { reason } | Self::Reconnecting { reason, .. } => reason.heap_size(),
            Self::Connected | Self::Lagged { .. } => 0,
        };
        size_of::<Self>() + heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parsed_json_is_counted_beyond_its_text() {
        let zeros = Value::Array(vec![json!(0); 1000]);
        // 2 bytes of text per element, at least one `Value` in memory.
        assert!(zeros.heap_size() >= 1000 * size_of::<Value>());
        let output = json!({"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]});
        let event = Event::Executed(Executed {
            node: "9".into(),
            output: serde_json::from_value(output.clone()).unwrap_or_default(),
            prompt_id: "p".into(),
            ..Executed::default()
        });
        assert!(event.retained_size() > output.to_string().len());
    }

    #[test]
    fn binary_frames_count_their_bytes() {
        let event = Event::Preview(Preview {
            format: super::super::ImageFormat::Png,
            metadata: None,
            image: Bytes::from(vec![0u8; 10_000]),
            prompt_id: None,
            node_id: None,
        });
        assert!(event.retained_size() >= 10_000);
    }
}
