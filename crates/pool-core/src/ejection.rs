//! Outlier ejection, as Envoy does it: a server whose prompts fail one after another (5xx on
//! `POST /prompt`, lost prompts, stalls) is taken out of rotation for an escalating time even
//! while its health check passes, never more than a set share of the fleet at once.

use std::time::Duration;

use pool_failover::FailureClass;
use tokio::time::Instant;

/// When a server is ejected from rotation for failing prompt after prompt; see
/// [`PoolBuilder::outlier_ejection`](crate::PoolBuilder::outlier_ejection).
///
/// A health check only says the server answers; a server that answers `/system_stats` but
/// fails every prompt would otherwise be re-admitted after each failure and burn one attempt
/// of every job sent to it.
///
/// ```
/// use std::time::Duration;
/// use pool_core::OutlierEjection;
///
/// let ejection = OutlierEjection::default()
///     .consecutive_failures(3)
///     .base_time(Duration::from_secs(30))
///     .max_ejected_percent(50);
/// assert_eq!(ejection.get_consecutive_failures(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierEjection {
    pub(crate) consecutive_failures: u32,
    pub(crate) base_time: Duration,
    pub(crate) max_time: Duration,
    pub(crate) max_ejected_percent: u8,
    pub(crate) classes: Vec<FailureClass>,
}

impl Default for OutlierEjection {
    /// 3 consecutive server-down or stuck attempt failures eject a server for 30 s, doubling
    /// with each ejection in a row up to 5 min; at most 50 % of the servers ejected at once.
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            base_time: Duration::from_secs(30),
            max_time: Duration::from_secs(300),
            max_ejected_percent: 50,
            classes: vec![FailureClass::ServerDown, FailureClass::Stuck],
        }
    }
}

impl OutlierEjection {
    /// Ejection turned off.
    pub fn disabled() -> Self {
        Self {
            consecutive_failures: 0,
            ..Self::default()
        }
    }

    /// How many failing attempts in a row eject a server (0 turns ejection off).
    #[must_use]
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = failures;
        self
    }

    /// The first ejection's length; each further ejection in a row doubles it.
    #[must_use]
    pub fn base_time(mut self, time: Duration) -> Self {
        self.base_time = time;
        self
    }

    /// The longest ejection.
    #[must_use]
    pub fn max_time(mut self, time: Duration) -> Self {
        self.max_time = time;
        self
    }

    /// The largest share of the pool's servers that may be ejected at once, in percent
    /// (Envoy's `max_ejection_percent`); at 0 nothing is ever ejected.
    #[must_use]
    pub fn max_ejected_percent(mut self, percent: u8) -> Self {
        self.max_ejected_percent = percent.min(100);
        self
    }

    /// Which failure classes count (default: server down and stuck). Failures that say
    /// something about one workflow rather than the server (invalid workflow, a missing
    /// resource, an execution error) are the failover strategy's business.
    #[must_use]
    pub fn classes(mut self, classes: impl IntoIterator<Item = FailureClass>) -> Self {
        self.classes = classes.into_iter().collect();
        self
    }

    /// The consecutive failures that eject a server.
    pub fn get_consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    fn counts(&self, class: FailureClass) -> bool {
        self.consecutive_failures > 0 && self.classes.contains(&class)
    }

    fn length(&self, ejections: u32) -> Duration {
        let factor = 1u32 << ejections.saturating_sub(1).min(16);
        self.base_time.saturating_mul(factor).min(self.max_time)
    }
}

/// One server's outlier state.
#[derive(Debug, Default)]
pub(crate) struct Outlier {
    consecutive: u32,
    /// Ejections in a row (reset by a success); the next ejection's length grows with it.
    ejections: u32,
    /// When the current ejection ends.
    pub(crate) until: Option<Instant>,
}

/// What a failure does to a server's outlier state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing changes.
    Keep,
    /// Eject the server until this instant.
    Eject { until: Instant, failures: u32 },
}

impl Outlier {
    /// Counts a failed attempt; `may_eject` says whether the fleet share allows one more
    /// ejection.
    pub(crate) fn failure(
        &mut self,
        class: FailureClass,
        config: &OutlierEjection,
        may_eject: bool,
        now: Instant,
    ) -> Verdict {
        if !config.counts(class) || self.until.is_some() {
            return Verdict::Keep;
        }
        self.consecutive += 1;
        if self.consecutive < config.consecutive_failures || !may_eject {
            return Verdict::Keep;
        }
        self.ejections += 1;
        let until = now + config.length(self.ejections);
        self.until = Some(until);
        Verdict::Eject {
            until,
            failures: self.consecutive,
        }
    }

    /// Counts a successful attempt: the failure streak and the escalation end.
    pub(crate) fn success(&mut self) {
        self.consecutive = 0;
        self.ejections = 0;
    }

    /// Ends the ejection; one more failure ejects the server again, for longer.
    pub(crate) fn end(&mut self, config: &OutlierEjection) {
        self.until = None;
        self.consecutive = config.consecutive_failures.saturating_sub(1);
    }

    pub(crate) fn is_ejected(&self) -> bool {
        self.until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_eject_with_escalation_and_a_success_resets() {
        let config = OutlierEjection::default()
            .consecutive_failures(2)
            .base_time(Duration::from_secs(10))
            .max_time(Duration::from_secs(25));
        let now = Instant::now();
        let mut o = Outlier::default();
        assert_eq!(
            o.failure(FailureClass::ServerDown, &config, true, now),
            Verdict::Keep
        );
        assert_eq!(
            o.failure(FailureClass::Execution, &config, true, now),
            Verdict::Keep,
            "execution errors are the strategy's business"
        );
        let first = o.failure(FailureClass::ServerDown, &config, true, now);
        assert_eq!(
            first,
            Verdict::Eject {
                until: now + Duration::from_secs(10),
                failures: 2
            }
        );
        assert!(o.is_ejected());
        assert_eq!(
            o.failure(FailureClass::Stuck, &config, true, now),
            Verdict::Keep
        );
        o.end(&config);
        let second = o.failure(FailureClass::Stuck, &config, true, now);
        assert_eq!(
            second,
            Verdict::Eject {
                until: now + Duration::from_secs(20),
                failures: 2
            },
            "one failure after a return ejects again, for twice as long"
        );
        o.end(&config);
        let third = o.failure(FailureClass::Stuck, &config, true, now);
        assert_eq!(
            third,
            Verdict::Eject {
                until: now + Duration::from_secs(25),
                failures: 2
            },
            "capped"
        );
        o.end(&config);
        o.success();
        assert_eq!(
            o.failure(FailureClass::ServerDown, &config, true, now),
            Verdict::Keep
        );
        assert_eq!(
            o.failure(FailureClass::ServerDown, &config, false, now),
            Verdict::Keep,
            "the fleet share forbids it"
        );
        assert!(!o.is_ejected());
        assert_eq!(
            o.failure(
                FailureClass::ServerDown,
                &OutlierEjection::disabled(),
                true,
                now
            ),
            Verdict::Keep
        );
    }
}
