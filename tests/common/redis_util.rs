//! Redis for tests: a unique key prefix per test on the shared Redis
//! (127.0.0.1:6379), a private `redis-server` on a free port for tests that stop
//! and restart Redis, and readers of the mirror's keys (docs/redis.md).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

use mcp_orchestrator::actors::persist::redis_schema::Keys;
use mcp_orchestrator::store::codec::Codec;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde_json::Value;

pub const SHARED_URL: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or run) uses.
pub fn prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// A prefix on the shared Redis whose keys are deleted when the test ends, pass
/// or fail (declare it before the server, so the server stops first).
pub struct SharedPrefix(String);

impl SharedPrefix {
    pub fn new() -> SharedPrefix {
        SharedPrefix(prefix())
    }
}

impl std::ops::Deref for SharedPrefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for SharedPrefix {
    fn drop(&mut self) {
        let Ok(mut c) = redis::Client::open(SHARED_URL).and_then(|c| c.get_connection()) else {
            return;
        };
        let pattern = Keys::new(&self.0).scan_pattern();
        let keys: Vec<String> = match redis::Commands::scan_match(&mut c, &pattern) {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::Commands::del(&mut c, &keys);
        }
    }
}

pub async fn conn(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// Deletes every key under `prefix` (the test's FLUSH: the Redis is shared).
pub async fn flush_prefix(url: &str, prefix: &str) -> usize {
    let mut c = conn(url).await;
    let pattern = Keys::new(prefix).scan_pattern();
    let mut keys: Vec<String> = Vec::new();
    let mut it: redis::AsyncIter<String> = c.scan_match(&pattern).await.expect("scan");
    while let Some(k) = it.next_item().await {
        keys.push(k.expect("scan item"));
    }
    drop(it);
    if !keys.is_empty() {
        let _: () = c.del(&keys).await.expect("del");
    }
    keys.len()
}

/// A `redis-server` of the test's own, on its own port and directory.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn new(extra: &[&str]) -> PrivateRedis {
        PrivateRedis {
            port: free_port(),
            dir: super::new_dir(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops Redis. `keep_data`: it saves first and loads the save when started
    /// again (a Redis with persistence); otherwise it comes back empty.
    pub fn stop(&mut self, keep_data: bool) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(self.auth_args())
            .args(["SHUTDOWN", if keep_data { "SAVE" } else { "NOSAVE" }])
            .output();
        if let Some(mut c) = self.child.take() {
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !keep_data {
            let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        }
    }

    fn auth_args(&self) -> Vec<String> {
        match self.extra.iter().position(|a| a == "--requirepass") {
            Some(i) => vec![
                "-a".into(),
                self.extra[i + 1].clone(),
                "--no-auth-warning".into(),
            ],
            None => vec![],
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads one workflow's mirror back, as JSON values comparable with the API's.
pub struct Mirror {
    pub conn: MultiplexedConnection,
    pub keys: Keys,
}

impl Mirror {
    pub async fn new(url: &str, prefix: &str) -> Mirror {
        Mirror {
            conn: conn(url).await,
            keys: Keys::new(prefix),
        }
    }

    pub async fn record(&mut self, id: &str) -> Option<Value> {
        let s: Option<String> = self.conn.get(self.keys.workflow(id)).await.expect("GET");
        s.map(|s| serde_json::from_str(&s).expect("record JSON"))
    }

    pub async fn events(&mut self, id: &str) -> Vec<Value> {
        let v: Vec<String> = self
            .conn
            .zrange(self.keys.events(id), 0, -1)
            .await
            .expect("ZRANGE");
        v.iter()
            .map(|s| serde_json::from_str(s).expect("event JSON"))
            .collect()
    }

    /// (decoded result JSON, stored size in bytes)
    pub async fn result(&mut self, id: &str) -> Option<(Value, usize)> {
        let b: Option<Vec<u8>> = self.conn.get(self.keys.result(id)).await.expect("GET");
        b.map(|b| {
            let raw = Codec::decode(&b).expect("decode result");
            (serde_json::from_slice(&raw).expect("result JSON"), b.len())
        })
    }

    pub async fn deliveries(&mut self, id: &str) -> Vec<Value> {
        let m: std::collections::BTreeMap<String, String> = self
            .conn
            .hgetall(self.keys.deliveries(id))
            .await
            .expect("HGETALL");
        m.values()
            .map(|s| serde_json::from_str(s).expect("delivery JSON"))
            .collect()
    }

    pub async fn pttl(&mut self, key: &str) -> i64 {
        self.conn.pttl(key).await.expect("PTTL")
    }

    pub async fn is_member(&mut self, set: &str, id: &str) -> bool {
        self.conn.sismember(set, id).await.expect("SISMEMBER")
    }
}
