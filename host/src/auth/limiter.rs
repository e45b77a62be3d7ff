//! The failed-authentication limit: strikes counted per (client address, credential) in a
//! fixed window, in a bounded table (least recently used pairs are forgotten first; no sweep).
//! IPv6 clients are counted by their /64, the block one subscriber usually holds.

use std::collections::hash_map::RandomState;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use sha2::{Digest, Sha256};

/// What a failed attempt claimed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A project's public key (its digest: the key is the caller's text, of any length).
    Project([u8; 32]),
    /// The admin token.
    Admin,
}

impl Credential {
    pub fn project(public_key: &str) -> Self {
        Credential::Project(Sha256::digest(public_key.as_bytes()).into())
    }
}

#[derive(Clone, Copy)]
struct Strikes {
    since: Instant,
    count: u32,
}

/// Failures per (address, credential) and window; beyond `max`, the pair waits for the window's end.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    /// Keyed with a random SipHash key: callers choose the keys.
    table: Mutex<LruCache<(IpAddr, Credential), Strikes, RandomState>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration, capacity: usize) -> Self {
        FailureLimiter { max, window, table: Mutex::new(LruCache::with_hasher(capacity.max(1), RandomState::new())) }
    }

    /// Count one failure of `credential` from `client`. Beyond the limit, how long until the
    /// window ends (the caller answers 429 until then).
    pub fn fail(&self, client: IpAddr, credential: Credential) -> Option<Duration> {
        let key = (address_key(client), credential);
        let now = Instant::now();
        let strikes = {
            let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
            match table.get_mut(&key) {
                Some(strikes) if now.saturating_duration_since(strikes.since) < self.window => {
                    strikes.count = strikes.count.saturating_add(1);
                    *strikes
                }
                _ => {
                    let strikes = Strikes { since: now, count: 1 };
                    table.insert(key, strikes);
                    strikes
                }
            }
        };
        (strikes.count > self.max).then(|| self.window.saturating_sub(now.saturating_duration_since(strikes.since)))
    }

    /// Pairs tracked now.
    pub fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The address failures are counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn failures_are_counted_per_address_and_credential() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60), 100);
        let (a, b) = (Credential::project("pk-a"), Credential::project("pk-b"));
        assert_eq!(limiter.fail(ip("192.0.2.1"), a), None);
        assert_eq!(limiter.fail(ip("192.0.2.1"), a), None);
        assert!(limiter.fail(ip("192.0.2.1"), a).is_some_and(|wait| wait <= Duration::from_secs(60)));
        // Another key, another address, the admin token: their own counts.
        assert_eq!(limiter.fail(ip("192.0.2.1"), b), None);
        assert_eq!(limiter.fail(ip("192.0.2.2"), a), None);
        assert_eq!(limiter.fail(ip("192.0.2.1"), Credential::Admin), None);
        // IPv6 by /64; IPv4-mapped IPv6 is the IPv4 address.
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let v6 = FailureLimiter::new(1, Duration::from_secs(60), 100);
        assert_eq!(v6.fail(ip("2001:db8:1:2::1"), a), None);
        assert!(v6.fail(ip("2001:db8:1:2:ffff::9"), a).is_some(), "same /64");
        assert_eq!(v6.fail(ip("2001:db8:1:3::1"), a), None, "another /64");
    }

    #[test]
    fn the_window_ends_and_the_table_stays_bounded() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(50), 3);
        let a = Credential::project("pk-a");
        assert_eq!(limiter.fail(ip("192.0.2.1"), a), None);
        assert!(limiter.fail(ip("192.0.2.1"), a).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limiter.fail(ip("192.0.2.1"), a), None, "a new window");
        for i in 0..10u8 {
            limiter.fail(IpAddr::from([198, 51, 100, i]), a);
        }
        assert_eq!(limiter.tracked(), 3);
    }
}
