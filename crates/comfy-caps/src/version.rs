//! [`CapsVersion`]: the content fingerprint of a [`Capabilities`](crate::Capabilities).

use std::fmt;

/// A fingerprint of what a server can run: its node classes and, per combo input, the model
/// files it offers. Equal capabilities have equal versions whatever the order, whitespace,
/// tooltips or other text of the `/object_info` they were read from, so a cache keyed by it is
/// invalidated exactly when something that changes a verdict changed (and a server that goes
/// back to an earlier state finds its earlier verdicts again).
///
/// 64 bits, computed in-process: stable for the life of the process, not meant to be stored
/// or compared across builds of this crate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapsVersion(u64);

impl CapsVersion {
    /// The fingerprint as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Wraps a number as a version (for tests and for caches that store it).
    pub fn from_u64(value: u64) -> Self {
        Self(value)
    }
}

impl fmt::Display for CapsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for CapsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapsVersion({self})")
    }
}

/// Tags that keep a class, a combo and a choice with the same names apart.
pub(crate) const CLASS_TAG: u64 = 0x243f_6a88_85a3_08d3;
/// See [`CLASS_TAG`].
pub(crate) const COMBO_TAG: u64 = 0x1319_8a2e_0370_7344;
/// See [`CLASS_TAG`].
pub(crate) const CHOICE_TAG: u64 = 0xa409_3822_299f_31d0;

/// A 64-bit finalizer (MurmurHash3's `fmix64`): every input bit affects every output bit, so
/// the wrapping sum of mixed items is an order-independent set fingerprint.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_sixteen_hex_digits() {
        let v = CapsVersion::from_u64(0xab);
        assert_eq!(v.to_string(), "00000000000000ab");
        assert_eq!(format!("{v:?}"), "CapsVersion(00000000000000ab)");
        assert_eq!(v.as_u64(), 0xab);
    }

    #[test]
    fn mixing_spreads_single_bit_changes() {
        let a = mix(1);
        let b = mix(2);
        assert!((a ^ b).count_ones() > 16, "{a:x} {b:x}");
        assert_eq!(mix(0), 0);
    }
}
