//! The configured keys, by digest. A presented token is hashed with SHA-256 and
//! compared with every key's digest in constant time (`subtle`), so neither the
//! match nor its position leaks through timing. Tokens are never stored or logged.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{clock::Clock, DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::caller::{Caller, Scopes};
use crate::config::{AuthConfig, KeyConfig};

pub struct Key {
    pub name: Arc<str>,
    digest: [u8; 32],
    pub scopes: Scopes,
    pub max_active: Option<usize>,
    pub budget_usd_per_day: Option<f64>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl Key {
    fn new(c: &KeyConfig) -> Key {
        let mut digest = [0u8; 32];
        // Validated as 64 hex characters at load; a bad one matches nothing.
        let _ = hex::decode_to_slice(c.sha256.to_ascii_lowercase(), &mut digest);
        let limiter = c.requests_per_second.and_then(NonZeroU32::new).map(|rps| {
            let burst = c.burst.and_then(NonZeroU32::new).unwrap_or(rps);
            RateLimiter::direct(Quota::per_second(rps).allow_burst(burst))
        });
        Key {
            name: Arc::from(c.name.as_str()),
            digest,
            scopes: Scopes::from_list(&c.scopes),
            max_active: c.max_active,
            budget_usd_per_day: c.budget_usd_per_day,
            limiter,
        }
    }

    pub fn caller(&self) -> Caller {
        Caller::for_key(Arc::clone(&self.name), self.scopes)
    }

    /// Takes one request from the key's bucket; Err = wait this long.
    pub fn admit_request(&self) -> Result<(), Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(l) => l.check().map_err(|not_until| {
                not_until.wait_time_from(governor::clock::DefaultClock::default().now())
            }),
        }
    }
}

pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    pub fn new(cfg: &AuthConfig) -> Keyring {
        Keyring {
            keys: cfg.keys.iter().map(Key::new).collect(),
        }
    }

    /// Auth is on when at least one key is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn get(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| &*k.name == name)
    }

    /// The key whose digest is SHA-256(token). Every key is compared, each in
    /// constant time; the index is chosen without branching on the comparison.
    pub fn find(&self, token: &str) -> Option<&Key> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u32;
        for (i, k) in self.keys.iter().enumerate() {
            let eq = k.digest.ct_eq(&presented);
            index = u32::conditional_select(&index, &(i as u32), eq);
            found |= eq;
        }
        if bool::from(found) {
            self.keys.get(index as usize)
        } else {
            None
        }
    }
}

/// The OS gave no random bytes for a token.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the OS: {0}")]
pub struct NoRandomness(getrandom::Error);

/// A fresh token: `mcpo_` + 64 hex characters (256 bits from the OS's CSPRNG).
/// The prefix lets secret scanners recognise a leaked one.
pub fn new_token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    Ok(format!("mcpo_{}", hex::encode(bytes)))
}

/// What `[[auth.keys]] sha256` holds for a token.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;

    fn cfg(tokens: &[(&str, &str)]) -> AuthConfig {
        AuthConfig {
            keys: tokens
                .iter()
                .map(|(name, token)| KeyConfig {
                    name: name.to_string(),
                    sha256: sha256_hex(token),
                    scopes: vec![Scope::Read],
                    max_active: None,
                    requests_per_second: Some(1),
                    burst: Some(2),
                    budget_usd_per_day: None,
                    max_share: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn finds_the_key_whose_digest_matches() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("mcpo_") && a.len() == 69);
        let ring = Keyring::new(&cfg(&[("a", &a), ("b", &b)]));
        assert_eq!(ring.find(&a).map(|k| &*k.name), Some("a"));
        assert_eq!(ring.find(&b).map(|k| &*k.name), Some("b"));
        assert!(ring.find("mcpo_wrong").is_none());
        assert!(ring.find("").is_none());
    }

    #[test]
    fn the_bucket_allows_the_burst_then_says_how_long_to_wait() {
        let ring = Keyring::new(&cfg(&[("a", "t")]));
        let k = ring.get("a").unwrap();
        assert!(k.admit_request().is_ok());
        assert!(k.admit_request().is_ok());
        let wait = k.admit_request().unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
    }
}
