//! Per-key shares of the caps every tenant draws from: `mcp.max_sessions`,
//! `limits.max_sse_streams`, `webhooks.max_subscriptions` and
//! `webhooks.max_pending`. No key may hold more than its share of one
//! (`auth.max_share`, or the key entry's own `max_share`), so one tenant filling
//! a cap leaves room for the others. With one key, or none (auth off: every
//! caller is the one anonymous key), there is nobody to leave room for and the
//! key may use the whole cap. Things owned by no configured key (created before
//! keys were configured) count as one more key.

use std::collections::{HashMap, HashSet};

use metrics::{counter, describe_counter};

use crate::config::AuthConfig;

/// Counter: requests (or deliveries) refused because a key held its share of a
/// cap, by `key` (a configured key name, or `none`) and `cap`.
pub const SHARE_REFUSALS: &str = "auth_key_share_refusals_total";

pub fn describe() {
    describe_counter!(
        SHARE_REFUSALS,
        "Refusals because a key held its share (auth.max_share) of a shared cap, by key and cap"
    );
}

#[derive(Debug, Clone)]
pub struct Shares {
    default: f64,
    per_key: HashMap<String, f64>,
    /// The configured names: the only `key` label values besides `none`.
    names: HashSet<String>,
    /// One key or none: the whole cap is the key's.
    lone: bool,
}

impl Shares {
    pub fn new(cfg: &AuthConfig) -> Shares {
        Shares {
            default: cfg.max_share,
            per_key: cfg
                .keys
                .iter()
                .filter_map(|k| k.max_share.map(|s| (k.name.clone(), s)))
                .collect(),
            names: cfg.keys.iter().map(|k| k.name.clone()).collect(),
            lone: cfg.keys.len() <= 1,
        }
    }

    /// How many of `cap` the key (None: no key) may hold: at least 1.
    pub fn limit(&self, key: Option<&str>, cap: usize) -> usize {
        if self.lone {
            return cap;
        }
        let share = key
            .and_then(|k| self.per_key.get(k))
            .copied()
            .unwrap_or(self.default);
        ((cap as f64 * share).floor() as usize).clamp(1, cap.max(1))
    }

    /// Counts a refusal; the label is the key's configured name, else `none`
    /// (no key, or an owner recorded under a key no longer configured).
    pub fn refused(&self, key: Option<&str>, cap: &'static str) {
        let key = key
            .filter(|k| self.names.contains(*k))
            .unwrap_or("none")
            .to_string();
        counter!(SHARE_REFUSALS, "key" => key, "cap" => cap).increment(1);
    }

    /// "for key 'name'" (or "without a key"), for refusal messages.
    pub fn scope(key: Option<&str>) -> String {
        match key {
            Some(k) => format!("for key '{k}'"),
            None => "without a key".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyConfig;

    fn key(name: &str, share: Option<f64>) -> KeyConfig {
        KeyConfig {
            max_share: share,
            ..crate::config::test_key(name)
        }
    }

    #[test]
    fn a_key_gets_its_share_and_at_least_one() {
        let cfg = AuthConfig {
            keys: vec![key("a", None), key("b", Some(0.1)), key("c", Some(1.0))],
            ..Default::default()
        };
        let s = Shares::new(&cfg);
        assert_eq!(s.limit(Some("a"), 1000), 500);
        assert_eq!(s.limit(Some("b"), 1000), 100);
        assert_eq!(s.limit(Some("c"), 1000), 1000);
        assert_eq!(s.limit(None, 1000), 500, "unowned counts as one more key");
        assert_eq!(s.limit(Some("a"), 3), 1);
        assert_eq!(s.limit(Some("b"), 1), 1);
    }

    #[test]
    fn one_key_or_none_may_use_the_whole_cap() {
        let none = Shares::new(&AuthConfig::default());
        assert_eq!(none.limit(None, 7), 7);
        let one = Shares::new(&AuthConfig {
            keys: vec![key("a", None)],
            ..Default::default()
        });
        assert_eq!(one.limit(Some("a"), 7), 7);
    }
}
