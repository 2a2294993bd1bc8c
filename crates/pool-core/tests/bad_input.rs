//! Whatever a caller hands to `enqueue` gets a typed error or works: deep, wide and
//! malformed workflows never panic or overflow the stack.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use pool_core::{Error, JobOptions, Pool};
use proptest::prelude::*;
use serde_json::{Value, json};

/// `[[[...0...]]]`, `depth` levels, built without recursion.
fn nested(depth: usize) -> Value {
    let mut value = json!(0);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

#[tokio::test]
async fn a_workflow_nested_far_too_deep_is_refused_without_overflowing() {
    let pool = Pool::builder().build().unwrap();
    let workflow = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        "3": {"class_type": "Note", "inputs": {"deep": null}}
    });
    let mut workflow = workflow;
    workflow["3"]["inputs"]["deep"] = nested(100_000);
    let err = pool.enqueue(workflow, JobOptions::new()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidWorkflow(_)), "{err}");
    assert!(err.to_string().contains("deep"), "{err}");
}

/// Any JSON value, nested up to `depth` levels, objects and arrays up to `width` wide.
fn any_json(depth: u32, width: usize) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9_ .-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 4096, width as u32, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..width).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9_]{1,6}", inner, 0..width)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A workflow-shaped value: node ids to nodes with a class and arbitrary inputs, or
/// anything at all.
fn workflowish() -> impl Strategy<Value = Value> {
    let node = (
        prop_oneof![
            "[A-Z][a-zA-Z]{0,10}".prop_map(Value::String),
            any_json(2, 3)
        ],
        prop::collection::btree_map("[a-z_]{1,8}", any_json(6, 6), 0..8),
    )
        .prop_map(|(class, inputs)| {
            json!({"class_type": class, "inputs": Value::Object(inputs.into_iter().collect())})
        });
    prop_oneof![
        4 => prop::collection::btree_map("[0-9]{1,4}", node, 0..40)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => any_json(8, 8),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn enqueue_takes_or_refuses_anything_with_a_typed_answer(workflow in workflowish()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let pool = Pool::builder().build().unwrap();
            match pool.enqueue(workflow, JobOptions::new()).await {
                Ok(job) => {
                    // No server in the pool: it fails with the reason, it does not hang.
                    let err = job.result().await.unwrap_err();
                    prop_assert!(err.is_no_eligible_server(), "{err}");
                }
                Err(err) => prop_assert!(matches!(err, Error::InvalidWorkflow(_)), "{err}"),
            }
            Ok(())
        })?;
    }
}
