//! The core reads no clock: every time comes in as an argument (`now`), taken by
//! the orchestrator's `clock` module. Fails if a source file of this crate reads one.

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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
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
