//! Durations in the configuration file, written like `"90s"`, `"5m"` or `"250ms"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Reads a humantime duration (`"1m 30s"`); an integer is taken as seconds.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(secs) => Ok(Duration::from_secs(secs)),
        Raw::Text(text) => humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "not a duration ({e}); write e.g. \"90s\", \"5m\" or \"250ms\""
            ))
        }),
    }
}

/// [`deserialize`] for optional durations.
pub(crate) mod option {
    use std::time::Duration;

    use serde::Deserializer;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
