//! The process's one wall clock. The domain reads none: handlers and actors take
//! the time here and pass it into the core as `now`.

use chrono::{DateTime, SubsecRound, Utc};

/// Timestamps are UTC with microsecond precision so they survive a store round trip
/// unchanged (SQLite and PostgreSQL both keep microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every source file under `dir`, recursively.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                out.push((p.display().to_string(), text));
            }
        }
    }

    #[test]
    fn the_domain_reads_no_clock() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(files.len() > 10, "the domain's sources were found");
        let clocks = [
            "Utc::now",
            "Local::now",
            "SystemTime::now",
            "Instant::now",
            "clock::now",
            "UNIX_EPOCH.elapsed",
        ];
        for (path, text) in &files {
            for c in clocks {
                assert!(!text.contains(c), "{path} reads the clock ({c})");
            }
        }
    }
}
