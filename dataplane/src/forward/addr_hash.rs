//! A hash map keyed by IPv4 addresses the operator or a connected subnet
//! chose (neighbours), with a multiplicative hash: the keys are not
//! attacker-chosen in a way that matters, and SipHash would cost more than the
//! rest of the lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing of the written words.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    }
}

/// A map keyed by addresses.
pub(crate) type AddrHashMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;
