//! A token bucket, to rate-limit the ICMP errors a worker sends (RFC 1812
//! 4.3.2.8: a router must be able to limit them, or a flood of bad packets
//! turns the unit into an amplifier).

/// Tokens refill at `rate_per_s` up to `burst`; each send takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: u64,
    burst: u64,
    /// Tokens, scaled by 1e9 so refills stay exact in integer nanoseconds.
    nano_tokens: u64,
    last: u64,
}

const NANOS: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_s: u64, burst: u64) -> Self {
        Self {
            rate_per_s,
            burst,
            nano_tokens: burst.saturating_mul(NANOS),
            last: 0,
        }
    }

    /// Takes a token at time `now` (ns) if one is there.
    pub fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let cap = self.burst.saturating_mul(NANOS);
        self.nano_tokens = self
            .nano_tokens
            .saturating_add(elapsed.saturating_mul(self.rate_per_s))
            .min(cap);
        if self.nano_tokens >= NANOS {
            self.nano_tokens -= NANOS;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3);
        assert!((0..3).all(|_| b.take(0)));
        assert!(!b.take(0));
        assert!(!b.take(NANOS / 20), "half a token is not a token");
        assert!(b.take(NANOS / 10));
        assert!(!b.take(NANOS / 10));
        // a long pause refills only up to the burst
        assert!((0..3).all(|_| b.take(100 * NANOS)));
        assert!(!b.take(100 * NANOS));
    }
}
