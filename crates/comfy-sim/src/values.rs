//! Checks of literal input values against their spec (INT/FLOAT ranges, combo lists), with
//! ComfyUI's error shapes and Python-flavoured messages.

use serde_json::{Value, json};

/// One node error `{type, message, details, extra_info}`.
pub(crate) fn error(kind: &str, message: &str, details: &str, extra_info: Value) -> Value {
    let mut error = json!({"type": kind, "message": message, "details": details});
    if let Some(map) = error.as_object_mut() {
        map.insert("extra_info".to_owned(), extra_info);
    }
    error
}

pub(crate) fn types_match(input: &str, received: &str) -> bool {
    if input == "*" || received == "*" || input == received {
        return true;
    }
    // Comma-separated unions ("IMAGE,MASK") accept any member.
    input.split(',').any(|t| t == received) || received.split(',').any(|t| t == input)
}

pub(crate) fn combo_options(spec: &Value) -> Option<&Vec<Value>> {
    match spec.get(0)? {
        Value::Array(options) => Some(options),
        Value::String(kind) if kind == "COMBO" => spec.get(1)?.get("options")?.as_array(),
        _ => None,
    }
}

pub(crate) fn not_in_list(
    name: &str,
    spec: &Value,
    options: &[Value],
    value: &Value,
) -> Option<Value> {
    if options.iter().any(|o| o == value) {
        return None;
    }
    let listed: Vec<String> = options.iter().map(py_repr).collect();
    Some(error(
        "value_not_in_list",
        "Value not in list",
        &format!("{name}: {} not in [{}]", py_repr(value), listed.join(", ")),
        json!({"input_name": name, "input_config": spec, "received_value": value}),
    ))
}

/// Python's `str()` of a JSON value, roughly.
pub(crate) fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON value, roughly.
fn py_repr(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// INT/FLOAT conversion and range checks.
pub(crate) fn number(kind: &str, name: &str, spec: &Value, value: &Value) -> Option<Value> {
    let converted: Result<f64, String> = match value {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::String(s) => {
            let parsed = if kind == "INT" {
                s.trim().parse::<i64>().map(|i| i as f64).ok()
            } else {
                s.trim().parse::<f64>().ok()
            };
            parsed.ok_or_else(|| {
                if kind == "INT" {
                    format!("invalid literal for int() with base 10: '{s}'")
                } else {
                    format!("could not convert string to float: '{s}'")
                }
            })
        }
        other => Err(format!(
            "{}() argument must be a string or a real number, not '{}'",
            kind.to_lowercase(),
            match other {
                Value::Array(_) => "list",
                Value::Object(_) => "dict",
                _ => "NoneType",
            }
        )),
    };
    let number = match converted {
        Ok(n) => n,
        Err(exception) => {
            return Some(error(
                "invalid_input_type",
                &format!("Failed to convert an input value to a {kind} value"),
                &format!("{name}, {}, {exception}", py_str(value)),
                json!({
                    "input_name": name,
                    "input_config": spec,
                    "received_value": value,
                    "exception_message": exception,
                }),
            ));
        }
    };
    let options = spec.get(1);
    let bound = |key: &str| options.and_then(|o| o.get(key)).and_then(Value::as_f64);
    let shown = |n: f64| {
        if kind == "INT" {
            format!("{}", n.trunc() as i64)
        } else {
            format!("{n}")
        }
    };
    let received = if kind == "INT" {
        json!(number.trunc() as i64)
    } else {
        json!(number)
    };
    if let Some(min) = bound("min")
        && number < min
    {
        return Some(error(
            "value_smaller_than_min",
            &format!(
                "Value {} smaller than min of {}",
                shown(number),
                bound_text(options, "min")
            ),
            name,
            json!({"input_name": name, "input_config": spec, "received_value": received}),
        ));
    }
    if let Some(max) = bound("max")
        && number > max
    {
        return Some(error(
            "value_bigger_than_max",
            &format!(
                "Value {} bigger than max of {}",
                shown(number),
                bound_text(options, "max")
            ),
            name,
            json!({"input_name": name, "input_config": spec, "received_value": received}),
        ));
    }
    None
}

fn bound_text(options: Option<&Value>, key: &str) -> String {
    options
        .and_then(|o| o.get(key))
        .map(Value::to_string)
        .unwrap_or_default()
}
