//! [`Timestamp`]: wall-clock time, for everything the pool stores or sends. Processes never
//! share `Instant`s; deadlines and timers inside one process still run on tokio's clock.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant in milliseconds since the Unix epoch (UTC), as stamped on records and
/// events. Serialized as an RFC 3339 string with milliseconds (`2026-12-02T16:11:28.123Z`);
/// an integer of milliseconds is accepted too.
///
/// ```
/// use pool_core::Timestamp;
///
/// let t = Timestamp::from_millis(1_764_691_888_123);
/// assert_eq!(t.to_string(), "2025-12-02T16:11:28.123Z");
/// assert_eq!("2025-12-02T16:11:28.123Z".parse::<Timestamp>(), Ok(t));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// Now, by the system clock (the epoch if the clock is before it).
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// From milliseconds since the epoch.
    pub fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// From a system time (truncated to the millisecond; the epoch if before it).
    pub fn from_system_time(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self(millis)
    }

    /// As a system time.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// This instant plus `d` (saturating).
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The wall-clock time of a tokio instant, by the distance between it and now.
    pub fn of_instant(instant: tokio::time::Instant) -> Self {
        let now = tokio::time::Instant::now();
        let wall = Self::now();
        if instant >= now {
            wall.saturating_add(instant - now)
        } else {
            let back = u64::try_from((now - instant).as_millis()).unwrap_or(u64::MAX);
            Self(wall.0.saturating_sub(back))
        }
    }
}

/// Years past 9999 have no RFC 3339 spelling: they are written as the last millisecond of
/// 9999.
const LAST_RFC3339_MILLIS: u64 = 253_402_300_799_999;

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = Self(self.0.min(LAST_RFC3339_MILLIS)).to_system_time();
        write!(f, "{}", humantime::format_rfc3339_millis(time))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {0}")]
pub struct TimestampError(String);

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_rfc3339_weak(s)
            .map(Self::from_system_time)
            .map_err(|e| TimestampError(e.to_string()))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or milliseconds since the epoch")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Serde for durations as (fractional) milliseconds: exact to the nanosecond for any duration
/// under 104 days, readable by any JSON consumer.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        #[allow(clippy::cast_precision_loss)]
        let nanos = d.as_nanos() as f64;
        s.serialize_f64(nanos / 1e6)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !ms.is_finite() || ms < 0.0 {
            return Err(serde::de::Error::custom(
                "a duration must be a finite, non-negative number of milliseconds",
            ));
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let nanos = (ms * 1e6).round().min(u64::MAX as f64) as u64;
        Ok(Duration::from_nanos(nanos))
    }

    /// The same for `Option<Duration>` (`null` for none).
    pub(crate) mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        #[allow(clippy::ref_option)]
        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(with = "super")] Duration);
            Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(d)| d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text_and_serde() {
        for millis in [0, 1, 999, 1_764_691_888_123, LAST_RFC3339_MILLIS] {
            let t = Timestamp::from_millis(millis);
            assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
        }
        assert_eq!(
            serde_json::from_str::<Timestamp>("42").ok(),
            Some(Timestamp(42))
        );
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn durations_round_trip_as_milliseconds() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T(#[serde(with = "millis")] Duration);
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(1500),
            Duration::from_secs(86_400 * 90) + Duration::from_nanos(7),
        ] {
            let json = serde_json::to_string(&T(d)).unwrap_or_default();
            assert_eq!(serde_json::from_str::<T>(&json).ok(), Some(T(d)), "{json}");
        }
        assert_eq!(
            serde_json::to_string(&T(Duration::from_millis(250)))
                .ok()
                .as_deref(),
            Some("250.0")
        );
        assert!(serde_json::from_str::<T>("-1").is_err());
    }
}
