//! `[auth]`: API keys (name, SHA-256 of the token, scopes, optional quotas), an
//! optional keys file in the same format, and whether keys are required off
//! loopback; `[metrics]`: whether `/metrics` needs a key too.

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// What a key may do. `admin` includes `read` and `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// One `[[auth.keys]]` entry. The token itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Shown in logs and metrics and recorded as the owner of what the key creates.
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`mcp-orchestrator keys new` prints it).
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Pending + running workflows this key may own at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<usize>,
    /// Sustained request rate; with `burst`, a token bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Requests allowed at once above the rate (default: requests_per_second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Spend of this key's workflows created since UTC midnight, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd_per_day: Option<f64>,
    /// This key's share of each shared cap, instead of `auth.max_share`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The keys; none = auth off (allowed only on a loopback bind, see `required`).
    pub keys: Vec<KeyConfig>,
    /// A TOML file with more `[[auth.keys]]` entries (e.g. a mounted secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<PathBuf>,
    /// With no keys, refuse to listen on anything but loopback. `false` = run
    /// without auth anywhere (only behind something that authenticates).
    pub required: bool,
    /// The largest share of each shared cap (MCP sessions, SSE streams, webhook
    /// subscriptions, pending deliveries) one key may hold.
    pub max_share: f64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            keys: Vec::new(),
            keys_file: None,
            required: true,
            max_share: 0.5,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `/metrics` requires a key (any scope) when true. Unset: true once any key
    /// is configured (its per-key series name every key), false without keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_auth: Option<bool>,
}

impl MetricsConfig {
    /// Whether `/metrics` needs a key, given whether any key is configured.
    pub fn requires_key(&self, keys_configured: bool) -> bool {
        self.require_auth.unwrap_or(keys_configured)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    auth: KeysFileAuth,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KeysFileAuth {
    #[serde(default)]
    keys: Vec<KeyConfig>,
}

impl AuthConfig {
    /// Appends the keys of `keys_file`, when set.
    pub fn load_keys_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.keys_file else {
            return Ok(());
        };
        let keys = read_keys_file(path)?;
        self.keys.extend(keys);
        Ok(())
    }

    pub fn validate(&self, bind: &str) -> Result<(), ConfigError> {
        let bad = |key: String, reason: String| Err(ConfigError(format!("{key}: {reason}")));
        let mut names = std::collections::HashSet::new();
        let mut digests = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            let key = |f: &str| format!("auth.keys[{i}].{f}");
            if k.name.trim().is_empty()
                || k.name.len() > 64
                || !k
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return bad(
                    key("name"),
                    "must be 1-64 characters of letters, digits, '-', '_' or '.'".into(),
                );
            }
            if !names.insert(k.name.as_str()) {
                return bad(key("name"), format!("'{}' is used twice", k.name));
            }
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(
                    key("sha256"),
                    "must be the 64-character hex SHA-256 of the token (mcp-orchestrator keys new prints it)".into(),
                );
            }
            if !digests.insert(k.sha256.to_ascii_lowercase()) {
                return bad(key("sha256"), "the same token digest is used twice".into());
            }
            if k.scopes.is_empty() {
                return bad(
                    key("scopes"),
                    "must name at least one of read, write, admin".into(),
                );
            }
            if k.max_active == Some(0) {
                return bad(key("max_active"), "must be at least 1 when set".into());
            }
            if k.requests_per_second == Some(0) || k.burst == Some(0) {
                return bad(
                    key("requests_per_second/burst"),
                    "must be at least 1 when set".into(),
                );
            }
            if k.burst.is_some() && k.requests_per_second.is_none() {
                return bad(key("burst"), "needs requests_per_second".into());
            }
            if let Some(share) = k.max_share {
                if !valid_share(share) {
                    return bad(key("max_share"), "must be above 0 and at most 1".into());
                }
            }
            if let Some(b) = k.budget_usd_per_day {
                if !(b.is_finite() && b > 0.0) {
                    return bad(
                        key("budget_usd_per_day"),
                        "must be positive when set".into(),
                    );
                }
            }
        }
        if !valid_share(self.max_share) {
            return bad(
                "auth.max_share".into(),
                "must be above 0 and at most 1".into(),
            );
        }
        if self.keys.is_empty() && self.required && !is_loopback(bind) {
            return bad(
                "auth.keys".into(),
                format!(
                    "no API keys are configured and server.bind '{bind}' is not a loopback address; \
                     add keys (mcp-orchestrator keys new --name NAME --scopes read,write) to auth.keys \
                     or auth.keys_file, or set auth.required = false to serve without authentication"
                ),
            );
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }
}

fn valid_share(share: f64) -> bool {
    share.is_finite() && share > 0.0 && share <= 1.0
}

fn read_keys_file(path: &Path) -> Result<Vec<KeyConfig>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "auth.keys_file: cannot read '{}': {e}",
            path.display()
        ))
    })?;
    let file: KeysFile = toml::from_str(&text).map_err(|e| {
        ConfigError(format!(
            "auth.keys_file '{}': {}",
            path.display(),
            e.message()
        ))
    })?;
    Ok(file.auth.keys)
}

/// True when every address the bind resolves to is loopback.
pub fn is_loopback(bind: &str) -> bool {
    match bind.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// A read-only key with a dummy digest and no limits: unit tests across the
/// crate build their keys from it.
#[cfg(test)]
pub fn test_key(name: &str) -> KeyConfig {
    KeyConfig {
        name: name.into(),
        sha256: "ab".repeat(32),
        scopes: vec![Scope::Read],
        max_active: None,
        requests_per_second: None,
        burst: None,
        budget_usd_per_day: None,
        max_share: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> KeyConfig {
        test_key(name)
    }

    fn err(a: &AuthConfig, bind: &str) -> String {
        a.validate(bind).unwrap_err().0
    }

    #[test]
    fn no_keys_only_on_loopback_unless_not_required() {
        let mut a = AuthConfig::default();
        assert!(a.validate("127.0.0.1:5060").is_ok());
        assert!(a.validate("[::1]:5060").is_ok());
        assert!(err(&a, "0.0.0.0:5060").starts_with("auth.keys:"));
        a.required = false;
        assert!(a.validate("0.0.0.0:5060").is_ok());
        a.required = true;
        a.keys.push(key("k"));
        assert!(a.validate("0.0.0.0:5060").is_ok());
    }

    #[test]
    fn bad_entries_name_the_key() {
        let mut a = AuthConfig {
            keys: vec![key("a"), key("a")],
            ..Default::default()
        };
        assert!(err(&a, "127.0.0.1:1").starts_with("auth.keys[1].name"));
        let mut k = key("b");
        k.sha256 = "xyz".into();
        a.keys = vec![k];
        assert!(err(&a, "127.0.0.1:1").starts_with("auth.keys[0].sha256"));
        let mut k = key("b");
        k.scopes.clear();
        a.keys = vec![k];
        assert!(err(&a, "127.0.0.1:1").starts_with("auth.keys[0].scopes"));
        let mut k = key("b");
        k.budget_usd_per_day = Some(-1.0);
        a.keys = vec![k];
        assert!(err(&a, "127.0.0.1:1").starts_with("auth.keys[0].budget_usd_per_day"));
        let mut k = key("b");
        k.max_share = Some(1.5);
        a.keys = vec![k];
        assert!(err(&a, "127.0.0.1:1").starts_with("auth.keys[0].max_share"));
        a.keys.clear();
        a.max_share = 0.0;
        assert!(err(&a, "127.0.0.1:1").starts_with("auth.max_share"));
    }

    #[test]
    fn keys_file_takes_the_printed_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let block = format!(
            "[[auth.keys]]\nname = \"ci\"\nsha256 = \"{}\"\nscopes = [\"read\", \"write\"]\nmax_active = 3\n",
            "0f".repeat(32)
        );
        std::fs::write(&path, block).unwrap();
        let mut a = AuthConfig {
            keys_file: Some(path.clone()),
            ..Default::default()
        };
        a.load_keys_file().unwrap();
        assert_eq!(a.keys.len(), 1);
        assert_eq!(a.keys[0].scopes, vec![Scope::Read, Scope::Write]);
        assert_eq!(a.keys[0].max_active, Some(3));
        let missing = AuthConfig {
            keys_file: Some(dir.path().join("nope.toml")),
            ..Default::default()
        }
        .load_keys_file()
        .unwrap_err()
        .0;
        assert!(missing.starts_with("auth.keys_file"), "{missing}");
    }
}
