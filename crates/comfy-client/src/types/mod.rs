//! Typed requests and answers of ComfyUI's HTTP API.

mod files;
mod history;
mod jobs;
mod object_info;
mod prompt;
mod queue;
mod system;

pub use files::{FreeRequest, ImageRef, NodeOutput, Upload, UploadResponse};
pub use history::{History, HistoryEntry, HistoryStatus};
pub use jobs::{
    Job, JobList, JobSort, JobStatus, JobWorkflow, JobsQuery, Pagination, PreviewOutput, SortOrder,
};
pub use object_info::{NodeInfo, NodeInputs};
pub(crate) use prompt::PromptBody;
pub use prompt::{PromptInfo, PromptRequest, PromptResponse};
pub use queue::{Queue, QueueItem};
pub use system::{Device, Features, SystemInfo, SystemStats};
