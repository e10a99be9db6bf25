//! FNV-1a, the one small non-cryptographic hash of the model (and of the daemon's extractor):
//! keys are short words from fixed tables, so SipHash's DoS resistance buys nothing and costs
//! most of the lookup time. The hashed sentiment features depend on these exact constants.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a's 64-bit offset basis: the state before any byte.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues an FNV-1a hash `h` over `bytes` (start from [`FNV_OFFSET`]).
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a as a `Hasher`, for the model's string-keyed tables.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let start = if self.0 == 0 { FNV_OFFSET } else { self.0 };
        self.0 = fnv1a(start, bytes);
    }
}

/// String-keyed map with FNV hashing.
pub(crate) type FastMap<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;
/// String set with FNV hashing.
pub(crate) type FastSet = HashSet<String, BuildHasherDefault<Fnv>>;

/// Rounds to 4 decimal places: every score the model stores, so outputs compare exactly.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite: "" -> offset basis, "a" -> af63dc4c8601ec8c.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"fo"), b"obar"),
            fnv1a(FNV_OFFSET, b"foobar")
        );
        let mut h = Fnv::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(round4(0.123_456), 0.1235);
    }
}
