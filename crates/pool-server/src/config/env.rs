//! Environment overrides: `COMFY_POOL__A__B=value` sets key `a.b` of the configuration.

use toml::{Table, Value};

use super::{ConfigError, ENV_PREFIX};

/// Applies every `COMFY_POOL__…` entry of `env` to `table`, in name order (so the result
/// does not depend on the environment's order).
pub(super) fn apply(
    table: &mut Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var,
                reason: "names no key (write COMFY_POOL__SECTION__KEY)".into(),
            });
        }
        set(table, &path, &raw).map_err(|reason| ConfigError::Env { var, reason })?;
    }
    Ok(())
}

/// Sets the value at `path`, creating tables on the way. A value replacing a string stays a
/// string; otherwise it is read as a TOML value when it is one (`8`, `true`, `["a"]`), as a
/// string when not.
fn set(table: &mut Table, path: &[String], raw: &str) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("names no key".into());
    };
    let mut slot: &mut Value = table
        .entry(parents.first().unwrap_or(last).clone())
        .or_insert_with(|| Value::Table(Table::new()));
    if parents.is_empty() {
        *slot = value_for(Some(slot), raw);
        return Ok(());
    }
    for key in parents.iter().skip(1).chain(std::iter::once(last)) {
        slot = match slot {
            Value::Table(t) => t
                .entry(key.clone())
                .or_insert_with(|| Value::Table(Table::new())),
            Value::Array(items) => {
                let index: usize = key
                    .parse()
                    .map_err(|_| format!("`{key}` is not an index of an array"))?;
                let len = items.len();
                items
                    .get_mut(index)
                    .ok_or_else(|| format!("index {index} is past the array's {len} entries"))?
            }
            _ => return Err(format!("`{key}` is inside a value that is not a table")),
        };
    }
    let new = value_for(Some(slot), raw);
    *slot = new;
    Ok(())
}

fn value_for(existing: Option<&Value>, raw: &str) -> Value {
    if matches!(existing, Some(Value::String(_))) {
        return Value::String(raw.to_owned());
    }
    let parsed: Result<Table, _> = format!("v = {raw}").parse();
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        Some(value) if !matches!(value, Value::Table(_)) => value,
        _ => Value::String(raw.to_owned()),
    }
}
