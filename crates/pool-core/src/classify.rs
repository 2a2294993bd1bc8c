//! The one place where a `comfy-client` error becomes a [`FailureClass`] and a reason.
//!
//! | client error | class |
//! |---|---|
//! | validation: unknown node class (`invalid_prompt` "… does not exist"; `missing_node_type` in later releases) | server lacks resource |
//! | validation: `value_not_in_list` on a model-file input | server lacks resource |
//! | validation: anything else (`prompt_no_outputs`, `required_input_missing`, `invalid_input_type`, `value_smaller_than_min`, bad link, `no_prompt`, …) | workflow invalid |
//! | `execution_error` | execution |
//! | interrupted by someone else | execution |
//! | connect refused, connect timeout, 5xx, 408/429, lost prompt, socket/transport errors | server down |
//! | start / idle / total deadline of the run | stuck |
//! | cancelled by its caller | cancelled |
//! | other 4xx, decode errors, oversized answers | execution |

use comfy_client::{Deadline, Error};
use pool_failover::FailureClass;

use crate::AttemptFailure;

/// Loader inputs whose choices are model files on the server.
const MODEL_INPUT_HINTS: [&str; 6] = ["ckpt", "model", "lora", "vae", "clip", "unet"];

/// Whether a `value_not_in_list` on this input (of this class) means a missing model file.
fn is_model_input(class_type: &str, input: Option<&str>) -> bool {
    let input = input.unwrap_or_default().to_ascii_lowercase();
    let class_type = class_type.to_ascii_lowercase();
    MODEL_INPUT_HINTS.iter().any(|hint| input.contains(hint))
        || (class_type.contains("loader") && input.ends_with("_name"))
}

/// Classifies a client error.
pub(crate) fn classify(error: &Error) -> AttemptFailure {
    let class = match error {
        Error::Validation(v) => {
            let lacks_model = v
                .values_not_in_list()
                .any(|(_, class_type, input, _)| is_model_input(class_type, input));
            if v.is_missing_node_class() || lacks_model {
                FailureClass::ServerLacksResource
            } else {
                FailureClass::WorkflowInvalid
            }
        }
        Error::Execution(_) | Error::Interrupted { .. } => FailureClass::Execution,
        Error::Cancelled { .. } => FailureClass::Cancelled,
        Error::Timeout {
            deadline: Deadline::Start | Deadline::Idle | Deadline::Total,
            ..
        } => FailureClass::Stuck,
        e if e.is_retryable() => FailureClass::ServerDown,
        _ => FailureClass::Execution,
    };
    let failure = AttemptFailure::new(class, error_chain(error));
    match error {
        Error::Validation(v) => failure.with_rejections(rejections(v)),
        _ => failure,
    }
}

/// What a rejection names, error by error, for the pool to check against the server's
/// capabilities (whatever the wording of its ComfyUI version).
fn rejections(v: &comfy_client::ValidationError) -> Vec<crate::Rejected> {
    let text = |kind: &str, message: &str, details: &str| {
        Some(format!("{kind}: {message} {details}").trim().to_owned())
    };
    let mut all = vec![crate::Rejected::new(
        v.missing_node_class().map(str::to_owned),
        None,
        None,
        text(&v.error.kind, &v.error.message, &v.error.details),
    )];
    for (_, class_type, e) in v.node_error_list() {
        let value = e
            .received_value()
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        all.push(crate::Rejected::new(
            Some(class_type.to_owned()),
            e.input_name().map(str::to_owned),
            value,
            text(&e.kind, &e.message, &e.details),
        ));
    }
    all
}

/// The error's message followed by its causes.
fn error_chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use comfy_client::ValidationError;
    use serde_json::json;

    use super::*;

    /// A client error from a `POST /prompt` 400 body as recorded from a real ComfyUI.
    fn rejected(body: serde_json::Value) -> Error {
        let v: ValidationError = serde_json::from_value(body).unwrap();
        Error::Validation(Box::new(v))
    }

    fn unknown_error() -> Error {
        rejected(
            json!({"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNodeClass does not exist.", "details": "Node ID '#2'", "extra_info": {}}, "node_errors": {}}),
        )
    }

    fn node_error(kind: &str, class_type: &str, input: &str) -> serde_json::Value {
        json!({
            "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
            "node_errors": {"4": {"errors": [{"type": kind, "message": "m", "details": input,
                "extra_info": {"input_name": input, "received_value": "x.safetensors"}}],
                "dependent_outputs": ["9"], "class_type": class_type}}
        })
    }

    #[test]
    fn recorded_rejections_are_classified() {
        let unknown = json!({"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNodeClass does not exist.", "details": "Node ID '#2'", "extra_info": {}}, "node_errors": {}});
        assert_eq!(
            classify(&rejected(unknown)).class,
            FailureClass::ServerLacksResource
        );
        // Later ComfyUI releases word an unknown class differently; both lack a resource.
        let current = json!({"error": {"type": "missing_node_type", "message": "Node 'NoSuchNodeClass' not found. The custom node may not be installed.", "details": "Node ID '#7'", "extra_info": {"node_id": "7", "class_type": "NoSuchNodeClass", "node_title": "Mystery"}}, "node_errors": {}});
        let rejected_now = rejected(current);
        assert_eq!(
            classify(&rejected_now).class,
            FailureClass::ServerLacksResource
        );
        for legacy_or_current in [&unknown_error(), &rejected_now] {
            assert_eq!(
                legacy_or_current
                    .validation()
                    .and_then(ValidationError::missing_node_class),
                Some("NoSuchNodeClass")
            );
        }
        let missing_model = node_error("value_not_in_list", "CheckpointLoaderSimple", "ckpt_name");
        assert_eq!(
            classify(&rejected(missing_model)).class,
            FailureClass::ServerLacksResource
        );
        let bad_choice = node_error("value_not_in_list", "KSampler", "sampler_name");
        assert_eq!(
            classify(&rejected(bad_choice)).class,
            FailureClass::WorkflowInvalid
        );
        for (kind, input) in [
            ("value_smaller_than_min", "width"),
            ("required_input_missing", "height"),
            ("invalid_input_type", "width"),
            ("exception_during_inner_validation", "images"),
        ] {
            let failure = classify(&rejected(node_error(kind, "EmptyImage", input)));
            assert_eq!(failure.class, FailureClass::WorkflowInvalid, "{kind}");
            assert!(failure.reason.contains(kind), "{}", failure.reason);
        }
        let no_outputs = json!({"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}});
        assert_eq!(
            classify(&rejected(no_outputs)).class,
            FailureClass::WorkflowInvalid
        );
        let missing_class_type = json!({"error": {"type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type property.", "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}});
        assert_eq!(
            classify(&rejected(missing_class_type)).class,
            FailureClass::WorkflowInvalid
        );
        let no_prompt = json!({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}});
        assert_eq!(
            classify(&rejected(no_prompt)).class,
            FailureClass::WorkflowInvalid
        );
    }

    #[test]
    fn transport_and_run_errors_are_classified() {
        let status = |status| Error::Status {
            status,
            path: "/prompt".into(),
            body: String::new(),
        };
        assert_eq!(classify(&status(500)).class, FailureClass::ServerDown);
        assert_eq!(classify(&status(503)).class, FailureClass::ServerDown);
        assert_eq!(classify(&status(404)).class, FailureClass::Execution);
        assert_eq!(
            classify(&Error::Lost {
                prompt_id: "p".into()
            })
            .class,
            FailureClass::ServerDown
        );
        let timeout = |deadline| Error::Timeout {
            deadline,
            limit: std::time::Duration::from_secs(1),
        };
        assert_eq!(
            classify(&timeout(Deadline::Connect)).class,
            FailureClass::ServerDown
        );
        assert_eq!(
            classify(&timeout(Deadline::Request)).class,
            FailureClass::ServerDown
        );
        assert_eq!(
            classify(&timeout(Deadline::Idle)).class,
            FailureClass::Stuck
        );
        assert_eq!(
            classify(&timeout(Deadline::Total)).class,
            FailureClass::Stuck
        );
        let failure = comfy_client::ExecutionFailure {
            node_id: "3".into(),
            node_type: "KSampler".into(),
            exception_type: "torch.OutOfMemoryError".into(),
            exception_message: "CUDA out of memory".into(),
            ..Default::default()
        };
        let failed = classify(&Error::Execution(Box::new(failure)));
        assert_eq!(failed.class, FailureClass::Execution);
        assert!(failed.reason.contains("out of memory"), "{}", failed.reason);
        assert_eq!(
            classify(&Error::Cancelled {
                prompt_id: "p".into()
            })
            .class,
            FailureClass::Cancelled
        );
    }

    #[test]
    fn model_inputs_are_recognised() {
        assert!(is_model_input("CheckpointLoaderSimple", Some("ckpt_name")));
        assert!(is_model_input("LoraLoader", Some("lora_name")));
        assert!(is_model_input("UpscaleModelLoader", Some("model_name")));
        assert!(!is_model_input("KSampler", Some("sampler_name")));
        assert!(!is_model_input("KSampler", Some("scheduler")));
    }
}
