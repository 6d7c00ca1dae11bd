//! Unique ids: hex of SHA-256 over a seed, the time, the process id and a
//! per-process counter, so two calls never collide, across processes too.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// `bytes` bytes (2 x `bytes` hex digits, at most 32 bytes) unique across
/// processes and calls; `seed` mixes in something of the caller's.
pub fn unique_hex(seed: &str, bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update(
        chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    crate::hex(&h.finalize()[..bytes.min(32)])
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_differ_and_have_the_asked_length() {
        let (a, b) = (super::unique_hex("x", 16), super::unique_hex("x", 16));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(super::unique_hex("x", 4).len(), 8);
    }
}
