//! API keys for tests: fresh tokens, a keys file the server reads through
//! `auth.keys_file`, and requests made with a token.

use std::path::PathBuf;

use serde_json::Value;

use super::{new_dir, Builder, Resp, Server};

#[derive(Clone, Debug)]
pub struct TestKey {
    pub name: String,
    pub token: String,
    scopes: Vec<String>,
    extra: String,
}

/// A key with a fresh token; `scopes` like `["read", "write"]`.
pub fn key(name: &str, scopes: &[&str]) -> TestKey {
    TestKey {
        name: name.to_string(),
        token: mcp_orchestrator::auth::new_token().expect("token"),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        extra: String::new(),
    }
}

impl TestKey {
    /// More TOML lines for the entry (quotas).
    pub fn with(mut self, toml_line: &str) -> Self {
        self.extra.push_str(toml_line);
        self.extra.push('\n');
        self
    }

    pub fn entry(&self) -> String {
        let scopes: Vec<String> = self.scopes.iter().map(|s| format!("\"{s}\"")).collect();
        format!(
            "[[auth.keys]]\nname = \"{}\"\nsha256 = \"{}\"\nscopes = [{}]\n{}\n",
            self.name,
            mcp_orchestrator::auth::sha256_hex(&self.token),
            scopes.join(", "),
            self.extra
        )
    }
}

/// Writes the keys to a fresh file, as a mounted secret would be.
pub fn keys_file(keys: &[&TestKey]) -> PathBuf {
    let path = new_dir().join("keys.toml");
    let text: String = keys.iter().map(|k| k.entry()).collect();
    std::fs::write(&path, text).expect("write keys file");
    path
}

impl Builder {
    /// Turns auth on with these keys (through `auth.keys_file`).
    pub fn keys(self, keys: &[&TestKey]) -> Self {
        self.env("MCPO__AUTH__KEYS_FILE", keys_file(keys).display())
    }
}

impl Server {
    /// A request with `Authorization: Bearer <token>` when a token is given.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::into_resp(req.send().await.expect("request")).await
    }

    pub async fn get_as(&self, k: &TestKey, path: &str) -> Resp {
        self.call(reqwest::Method::GET, path, Some(&k.token), None)
            .await
    }

    pub async fn post_as(&self, k: &TestKey, path: &str, body: &Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(&k.token), Some(body))
            .await
    }

    /// Creates a workflow as `k` and returns its id (asserting 201).
    pub async fn create_as(&self, k: &TestKey, body: Value) -> String {
        let r = self.post_as(k, "/v1/workflows", &body).await;
        assert_eq!(r.status, 201, "create as {} failed: {:?}", k.name, r.body);
        r.body["id"].as_str().expect("id").to_string()
    }
}

/// The machine-readable code of an error, in the v1 shape or the old one.
pub fn code(r: &Resp) -> String {
    r.body["error"]["code"]
        .as_str()
        .or_else(|| r.body["code"].as_str())
        .unwrap_or("")
        .to_string()
}
