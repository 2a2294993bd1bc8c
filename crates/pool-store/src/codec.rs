//! How a [`JobRecord`] is kept: its spec as JSON, written once at insert (it can be 100 KB),
//! and the rest of the record as JSON, rewritten by each update, without the copy of the
//! attempts that a finished job's result repeats; read back as one record.
//! Also the integer forms of times and counters.

use std::sync::Arc;

use pool_core::{JobRecord, StoreError, Timestamp};
use serde::Serialize;
use serde::ser::{self, Impossible, SerializeStruct};

/// The name of the field that [`rest_json`] leaves out.
const SPEC_FIELD: &str = "spec";

/// The spec of a record, as JSON.
pub(crate) fn spec_json(record: &JobRecord) -> Result<String, StoreError> {
    serde_json::to_string(&*record.spec)
        .map_err(|e| StoreError::Corrupt(format!("job {}: spec not serializable: {e}", record.id)))
}

/// The last member of a stored rest whose result's timings left out the attempts that the
/// record lists already (the same ones: a finished job's result repeats them).
const ATTEMPTS_ELIDED: &str = ",\"result_attempts\":\"record\"}";

/// The record without its spec, as a JSON object. A result's `timings.attempts`, when they
/// are the record's own `attempts` (as in every result the pool makes), are written once:
/// the object then ends with [`ATTEMPTS_ELIDED`] and [`record_from`] puts them back.
pub(crate) fn rest_json(record: &JobRecord) -> Result<String, StoreError> {
    let repeated = record.result.as_deref().filter(|result| {
        !result.timings.attempts.is_empty() && result.timings.attempts == record.attempts
    });
    let Some(result) = repeated else {
        return write_rest(record);
    };
    let mut slim = result.clone();
    slim.timings.attempts = Vec::new();
    let mut without = record.clone();
    without.result = Some(Arc::new(slim));
    let mut rest = write_rest(&without)?;
    if rest.ends_with('}') {
        rest.pop();
        rest.push_str(ATTEMPTS_ELIDED);
    }
    Ok(rest)
}

fn write_rest(record: &JobRecord) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(512);
    record
        .serialize(WithoutSpec(&mut serde_json::Serializer::new(&mut out)))
        .map_err(|e| {
            StoreError::Corrupt(format!("job {}: record not serializable: {e}", record.id))
        })?;
    String::from_utf8(out).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The record whose spec and rest were stored as `spec` and `rest`.
pub(crate) fn record_from(spec: &str, rest: &str) -> Result<JobRecord, StoreError> {
    let mut record = parse_record(spec, rest)?;
    if rest.trim_end().ends_with(ATTEMPTS_ELIDED)
        && let Some(result) = record.result.as_mut()
    {
        Arc::make_mut(result).timings.attempts = record.attempts.clone();
    }
    Ok(record)
}

fn parse_record(spec: &str, rest: &str) -> Result<JobRecord, StoreError> {
    let fields = rest
        .trim()
        .strip_prefix('{')
        .ok_or_else(|| StoreError::Corrupt("a stored record is not a JSON object".to_owned()))?;
    let mut text = String::with_capacity(spec.len() + rest.len() + 16);
    text.push_str("{\"");
    text.push_str(SPEC_FIELD);
    text.push_str("\":");
    text.push_str(spec);
    if !fields.trim_start().starts_with('}') {
        text.push(',');
    }
    text.push_str(fields);
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("a stored record: {e}")))
}

/// Milliseconds since the epoch as a column value (saturating past year 292 million).
pub(crate) fn millis(t: Timestamp) -> i64 {
    int(t.as_millis())
}

/// A time column as a timestamp (the epoch for a negative value).
pub(crate) fn timestamp(v: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(v).unwrap_or(0))
}

/// An unsigned number as a column value (saturating).
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A counter column as a `u32` ([`StoreError::Corrupt`] when out of range).
pub(crate) fn count(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("counter out of range: {v}")))
}

/// A serializer that passes a struct's fields to `serde_json` but its `spec`. Only structs
/// are expected (a [`JobRecord`] is one); anything else is an error.
struct WithoutSpec<S>(S);

/// The fields of the struct being written.
struct Fields<S>(S);

fn not_a_struct<E: ser::Error>() -> E {
    E::custom("only a struct can be written without its spec")
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Err(not_a_struct())
        })*
    };
}

impl<S: ser::Serializer> ser::Serializer for WithoutSpec<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Fields<S::SerializeStruct>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Ok(Fields(
            self.0.serialize_struct(name, len.saturating_sub(1))?,
        ))
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(not_a_struct())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(not_a_struct())
    }
}

impl<S: SerializeStruct> SerializeStruct for Fields<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        if key == SPEC_FIELD {
            return Ok(());
        }
        self.0.serialize_field(key, value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Self::Error> {
        self.0.skip_field(key)
    }

    fn end(self) -> Result<Self::Ok, Self::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests {
    use pool_core::{JobOptions, JobSpec, Transition, Variant, WorkflowHash};
    use serde_json::{Value, json};

    use super::*;

    fn record() -> JobRecord {
        let workflow = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}});
        let spec = JobSpec::new(
            Arc::new(workflow.clone()),
            WorkflowHash::of(&workflow).unwrap(),
            JobOptions::new().tenant("acme").priority(3),
        );
        let mut record = JobRecord::new("job-1".into(), Arc::new(spec), Timestamp::from_millis(5));
        record.apply(&Transition::CancelRequested, Timestamp::from_millis(9));
        record
    }

    #[test]
    fn the_rest_leaves_the_spec_out_and_the_two_rebuild_the_record() {
        let record = record();
        let (spec, rest) = (spec_json(&record).unwrap(), rest_json(&record).unwrap());
        let rest_value: Value = serde_json::from_str(&rest).unwrap();
        assert!(rest_value.get("spec").is_none(), "{rest}");
        assert_eq!(rest_value["id"], "job-1");
        assert_eq!(rest_value["version"], 2);
        assert!(!rest.contains("EmptyImage"), "{rest}");
        assert_eq!(record_from(&spec, &rest).unwrap(), record);
    }

    #[test]
    fn damaged_rows_are_corrupt_not_panics() {
        let spec = spec_json(&record()).unwrap();
        for rest in ["", "[]", "{", "{}", "{\"id\": 5}"] {
            assert!(
                matches!(record_from(&spec, rest), Err(StoreError::Corrupt(_))),
                "{rest}"
            );
        }
        assert!(matches!(
            record_from("{", &rest_json(&record()).unwrap()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_spec_of_several_variants_survives_the_two_columns() {
        let variants: Vec<Variant> = ["EmptyImage", "EmptyLatentImage"]
            .into_iter()
            .map(|class| {
                let workflow = json!({"1": {"class_type": class, "inputs": {}}});
                let hash = WorkflowHash::of(&workflow).unwrap();
                Variant::new(Arc::new(workflow), hash)
            })
            .collect();
        let spec = JobSpec::with_variants(variants, JobOptions::new()).unwrap();
        let record = JobRecord::new("job-2".into(), Arc::new(spec), Timestamp::from_millis(5));
        let (spec, rest) = (spec_json(&record).unwrap(), rest_json(&record).unwrap());
        assert!(spec.contains("EmptyLatentImage"), "{spec}");
        let back = record_from(&spec, &rest).unwrap();
        assert_eq!(back.spec.variants().len(), 2);
        assert_eq!(back, record);
    }

    /// `record()` after one attempt and a successful end whose timings list `attempts`
    /// (`None`: the record's own).
    fn finished(attempts: Option<Value>) -> JobRecord {
        let mut record = record();
        let attempt = serde_json::from_value(json!({
            "attempt": 1,
            "server": "gpu-1",
            "prompt_id": "prompt-1",
            "started_at": 10,
            "duration_ms": 0.0,
            "outcome": {"status": "running"},
        }))
        .unwrap();
        assert!(record.apply(
            &Transition::Dispatched { attempt },
            Timestamp::from_millis(10)
        ));
        let attempts = attempts.unwrap_or_else(|| serde_json::to_value(&record.attempts).unwrap());
        let output = serde_json::from_value(json!({
            "job": "job-1",
            "server": "gpu-1",
            "prompt_id": "prompt-1",
            "outputs": {"9": {"images": []}},
            "seeds": [],
            "metadata": null,
            "timings": {"queue_wait_ms": 5.0, "total_ms": 9.0, "attempts": attempts, "nodes": []},
        }))
        .unwrap();
        let end = Transition::Finished {
            outcome: Ok(Arc::new(output)),
        };
        assert!(record.apply(&end, Timestamp::from_millis(20)));
        record
    }

    #[test]
    fn a_result_repeating_the_records_attempts_stores_them_once() {
        let record = finished(None);
        let result = record.result.as_deref().unwrap();
        assert_eq!(result.timings.attempts, record.attempts);
        let (spec, rest) = (spec_json(&record).unwrap(), rest_json(&record).unwrap());
        assert_eq!(
            rest.matches("\"prompt_id\":\"prompt-1\"").count(),
            2,
            "{rest}"
        );
        let value: Value = serde_json::from_str(&rest).unwrap();
        assert_eq!(value["result"]["timings"]["attempts"], json!([]), "{rest}");
        assert_eq!(
            value["attempts"].as_array().map(Vec::len),
            Some(1),
            "{rest}"
        );
        assert!(rest.len() < rest_json_in_full(&record).len());
        assert_eq!(record_from(&spec, &rest).unwrap(), record);
    }

    #[test]
    fn a_result_with_attempts_of_its_own_keeps_them() {
        for attempts in [
            json!([]),
            json!([{"attempt": 7, "server": "elsewhere",
            "prompt_id": "p-7", "started_at": 3, "duration_ms": 1.0,
            "outcome": {"status": "succeeded"}}]),
        ] {
            let record = finished(Some(attempts.clone()));
            assert_ne!(
                record.result.as_deref().unwrap().timings.attempts,
                record.attempts
            );
            let (spec, rest) = (spec_json(&record).unwrap(), rest_json(&record).unwrap());
            assert!(!rest.contains("result_attempts"), "{rest}");
            assert_eq!(record_from(&spec, &rest).unwrap(), record, "{attempts}");
        }
    }

    /// The rest as it is written without leaving anything out.
    fn rest_json_in_full(record: &JobRecord) -> String {
        write_rest(record).unwrap()
    }

    #[test]
    fn only_structs_are_written_without_a_spec() {
        let mut out = Vec::new();
        let err = 5u8.serialize(WithoutSpec(&mut serde_json::Serializer::new(&mut out)));
        assert!(err.is_err());
    }

    #[test]
    fn numbers_saturate_instead_of_wrapping() {
        assert_eq!(int(u64::MAX), i64::MAX);
        assert_eq!(millis(Timestamp::from_millis(7)), 7);
        assert_eq!(timestamp(-1), Timestamp::EPOCH);
        assert!(count(-1).is_err());
        assert_eq!(count(3).unwrap(), 3);
    }
}
