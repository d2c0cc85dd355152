//! Reading `/metrics`: a scrape, its samples by series, and waiting for a value.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Server, SEC};

/// `name{labels}` → value, from the Prometheus text format. Every series carries
/// the server's `instance` label first (asserted here); the key leaves it out, so
/// lookups name only a metric's own labels.
pub fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((without_instance(series).0, value.parse().ok()?))
        })
        .collect()
}

/// `name{instance="x",a="b"}` → (`name{a="b"}`, `x`); `name{instance="x"}` →
/// (`name`, `x`). Panics on a series without the label.
pub fn without_instance(series: &str) -> (String, String) {
    let (name, rest) = series
        .split_once("{instance=\"")
        .unwrap_or_else(|| panic!("series without an instance label: {series}"));
    let (id, tail) = rest
        .split_once('"')
        .unwrap_or_else(|| panic!("unterminated instance label: {series}"));
    let key = match tail.strip_prefix(',') {
        Some(labels) => format!("{name}{{{labels}"),
        None => name.to_string(),
    };
    (key, id.to_string())
}

/// `GET /metrics`, checked to be the Prometheus text format.
pub async fn scrape(s: &Server) -> String {
    let r = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.expect("metrics body")
}

/// A series' value, 0 when absent.
pub fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// Polls until `series` has `want` (metrics that lag a moment behind the API).
pub async fn wait_metric(s: &Server, series: &str, want: f64) {
    let t = Instant::now();
    loop {
        let got = value(&samples(&scrape(s).await), series);
        if got == want {
            return;
        }
        assert!(t.elapsed() < 20 * SEC, "{series} = {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One series of a fresh scrape, 0 when absent.
pub async fn metric(s: &Server, series: &str) -> f64 {
    value(&samples(&scrape(s).await), series)
}
