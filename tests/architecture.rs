//! The layers of docs/architecture.md, enforced: every file of `src/` and of the
//! domain crate (`crates/domain/src`, read as the `domain` module it is re-exported
//! as) is read, the items it names through `use crate::…`, `super::…` or an inline
//! `crate::…` path are resolved to the file that defines their deepest module,
//! and three rules are checked:
//!
//! - each top-level module imports only the layers the table below allows;
//! - no two files import each other, directly or around a circle;
//! - the domain crate depends on no crate of ours (no path dependency in its
//!   Cargo.toml): the compiler then refuses any import of ours in the core.
//!
//! `pub use` lines (re-export facades), `mod` lines and `#[cfg(test)]` modules
//! are not edges. Text-based and approximate, like a reader's eye: enough to catch
//! a wrong-way import the day it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each may import (docs/architecture.md draws the
/// same). `root` is `lib.rs` (the composition: it may name anything).
#[rustfmt::skip]
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("metric_names", &[]),
    ("clock", &[]),
    ("config", &["domain"]),
    ("error", &["domain", "config", "store"]),
    ("store", &["domain", "config", "metric_names", "clock"]),
    ("documents", &["domain", "metric_names"]),
    // MCP tool servers behind the agents (clients, supervised actors).
    ("tools", &["domain", "config", "metric_names", "clock"]),
    ("exec", &["domain", "config", "metric_names", "clock", "tools", "documents"]),
    // The key ring is read from the app's state.
    ("auth", &["domain", "config", "error", "metric_names", "store", "clock", "root"]),
    // The SSE caps and the dispatcher's overflow take per-key shares.
    ("events", &["domain", "config", "error", "metric_names", "store", "clock", "auth"]),
    ("cluster", &["domain", "config", "error", "metric_names", "store", "clock"]),
    ("actors", &["domain", "config", "error", "metric_names", "clock", "store", "exec",
                 "tools", "documents", "events", "auth", "cluster"]),
    // The Archiver is a supervised actor beside the evictor.
    ("archive", &["domain", "config", "error", "metric_names", "clock", "store", "actors"]),
    // The start-up steps lib.rs sequences: opening the store, restoring, starting
    // the persisters, the registry and the actors beside it.
    ("startup", &["domain", "config", "error", "store", "cluster", "exec", "tools", "auth",
                  "events", "actors", "archive"]),
    ("net", &["startup", "config"]),
    ("healthcheck", &["config"]),
    // Route helpers and routes: everything below them.
    ("idempotency", &["domain", "config", "error", "metric_names", "clock", "store", "api",
                      "root"]),
    ("api", &["domain", "config", "error", "metric_names", "clock", "store", "exec", "tools",
              "documents", "events", "auth", "cluster", "archive", "actors", "idempotency",
              "startup", "root"]),
];

type Module = Vec<String>;

/// Every module of a library (not `bin/`, not `main.rs`) and its file; the
/// crate's modules are named below `prefix` (`domain` for the domain crate).
fn module_files(src: &Path, prefix: &[&str]) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, src: &Path, prefix: &[&str], out: &mut BTreeMap<Module, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                if name != "tests" && name != "bin" {
                    walk(&p, src, prefix, out);
                }
                continue;
            }
            if !name.ends_with(".rs") || name == "tests.rs" || name == "main.rs" {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap_or(&p).with_extension("");
            let mut m: Module = prefix
                .iter()
                .map(|s| s.to_string())
                .chain(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().to_string()),
                )
                .collect();
            if matches!(m.last().map(String::as_str), Some("mod" | "lib")) {
                m.pop();
            }
            out.insert(m, p);
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, prefix, &mut out);
    out
}

/// The text without `#[cfg(test)] mod … { … }` blocks and `//` comments.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let head_end = after.find(['{', ';']).unwrap_or(after.len());
        if !after[..head_end].contains("mod ") || !after[head_end..].starts_with('{') {
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (j, ch) in after[head_end..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = head_end + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e] (paths as segments).
fn expand(prefix: &[String], body: &str) -> Vec<Module> {
    let body = body.trim();
    if let Some(open) = body.find('{') {
        let head: Vec<String> = body[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let base: Vec<String> = prefix.iter().cloned().chain(head).collect();
        let inner = &body[open + 1..body.rfind('}').unwrap_or(body.len())];
        let (mut parts, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
        for ch in inner.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            }
            cur.push(ch);
        }
        parts.push(cur);
        return parts
            .iter()
            .filter(|p| !p.trim().is_empty())
            .flat_map(|p| expand(&base, p))
            .collect();
    }
    let path = body.split(" as ").next().unwrap_or(body);
    vec![prefix
        .iter()
        .cloned()
        .chain(
            path.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        )
        .collect()]
}

/// Paths named by a file: `use` items (not `pub use`) and inline `crate::`/`super::` paths.
fn named_paths(text: &str) -> Vec<Module> {
    let mut paths = Vec::new();
    let mut i = 0;
    while let Some(k) = text[i..].find("use ") {
        let at = i + k;
        i = at + 4;
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let before = text[line_start..at].trim();
        let word_start =
            at == 0 || !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if !before.is_empty() || !word_start {
            continue; // `pub use`, or `use` inside another word
        }
        let Some(end) = text[at..].find(';') else {
            break;
        };
        let body = &text[at + 4..at + end];
        if body.starts_with("crate::") || body.starts_with("super::") || body.starts_with("self::")
        {
            paths.extend(expand(&[], body));
        } else {
            // `use child::Item` in a `mod.rs`: relative to this module (resolved
            // only where such a child file exists; `use std::…` resolves to none).
            paths.extend(expand(&["self".into()], body));
        }
    }
    for start in ["crate::", "super::"] {
        let mut j = 0;
        while let Some(k) = text[j..].find(start) {
            let at = j + k;
            j = at + start.len();
            let prev = text[..at].chars().last();
            if prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            if is_use_line(&text[line_start..at]) {
                continue;
            }
            let end = text[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |e| at + e);
            paths.push(
                text[at..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            );
        }
    }
    paths
}

/// `use …` or `pub(…) use …` up to the path: already counted (or a facade).
fn is_use_line(head: &str) -> bool {
    let mut h = head.trim_start();
    if let Some(rest) = h.strip_prefix("pub") {
        h = rest.trim_start();
        if h.starts_with('(') {
            h = h.find(')').map_or("", |e| &h[e + 1..]).trim_start();
        }
    }
    h.starts_with("use ")
}

/// File → files it imports, over the main crate and the domain crate.
fn graph() -> (
    BTreeMap<Module, PathBuf>,
    BTreeMap<Module, BTreeSet<Module>>,
) {
    let domain_files = module_files(&domain_src_dir(), &["domain"]);
    let mut files = module_files(&src_dir(), &[]);
    files.extend(domain_files.clone());
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &files {
        let text = strip(&std::fs::read_to_string(path).unwrap_or_default());
        let out = edges.entry(module.clone()).or_default();
        // `crate` in the domain crate is the `domain` module.
        let crate_root: Module = if domain_files.contains_key(module) {
            vec!["domain".into()]
        } else {
            Vec::new()
        };
        for p in named_paths(&text) {
            let (mut base, mut rest): (Module, &[String]) = (module.clone(), &p[..]);
            if rest.first().map(String::as_str) == Some("crate") {
                base = crate_root.clone();
                rest = &rest[1..];
            }
            while let Some(seg) = rest.first() {
                match seg.as_str() {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
            let mut cur = base.clone();
            let mut best = files.contains_key(&cur).then(|| cur.clone());
            for seg in rest {
                cur.push(seg.clone());
                if files.contains_key(&cur) {
                    best = Some(cur.clone());
                } else {
                    break;
                }
            }
            if let Some(b) = best.filter(|b| b != module) {
                out.insert(b);
            }
        }
    }
    (files, edges)
}

fn top(m: &Module) -> &str {
    m.first().map_or("root", String::as_str)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn domain_src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/domain/src")
}

#[test]
fn the_domain_crate_depends_on_no_crate_of_ours() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/domain/Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("crates/domain/Cargo.toml");
    let manifest: toml::Value = text.parse().expect("crates/domain/Cargo.toml parses");
    let mut ours = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        for (name, spec) in manifest
            .get(table)
            .and_then(|t| t.as_table())
            .into_iter()
            .flatten()
        {
            if spec.get("path").is_some() || spec.get("git").is_some() {
                ours.push(format!("[{table}] {name}"));
            }
        }
    }
    assert!(
        ours.is_empty(),
        "the domain crate names crates of ours: {ours:?}"
    );
    assert!(
        module_files(&domain_src_dir(), &["domain"]).len() > 10,
        "the domain crate's sources were found"
    );
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let (_, edges) = graph();
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, tos) in &edges {
        let layer = top(from);
        if layer == "root" {
            continue;
        }
        let Some(may) = allowed.get(layer) else {
            wrong.push(format!(
                "src/{} is in a layer the table does not know: add `{layer}` to LAYERS (and to docs/architecture.md)",
                from.join("/")
            ));
            continue;
        };
        for to in tos {
            let target = top(to);
            if target != layer && !may.contains(&target) {
                wrong.push(format!(
                    "{} imports {} ({layer} may not import {target})",
                    from.join("::"),
                    if to.is_empty() {
                        "the crate root".to_string()
                    } else {
                        to.join("::")
                    }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong-way imports:\n{}", wrong.join("\n"));
}

#[test]
fn no_two_files_import_each_other_round_a_circle() {
    let (files, edges) = graph();
    // Tarjan's strongly connected components.
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        next: usize,
        circles: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a Module) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            let edges = self.edges;
            for w in edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(if w.is_empty() {
                        "lib".into()
                    } else {
                        w.join("::")
                    });
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.circles.push(comp);
                }
            }
        }
    }
    let mut t = T {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        circles: Vec::new(),
    };
    for v in files.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    assert!(
        files.len() > 50 && edges.values().map(BTreeSet::len).sum::<usize>() > 100,
        "the import graph looks empty: is src/ being read?"
    );
    assert!(
        t.circles.is_empty(),
        "import circles:\n{}",
        t.circles
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn workflow_failure_codes_are_spelled_only_in_the_core_and_the_error_table() {
    use mcp_orchestrator::domain::FailureCode;
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    assert!(files.len() > 50, "src/ was read");
    let mut spelled = Vec::new();
    for path in files.iter().filter(|p| !p.ends_with("src/error.rs")) {
        let text = strip(&std::fs::read_to_string(path).unwrap_or_default());
        for line in text.lines() {
            // OpenAPI response lists name the API error codes they document.
            if line.contains("description =") {
                continue;
            }
            for code in FailureCode::ALL {
                if line.contains(&format!("\"{code}\"")) {
                    spelled.push(format!("{}: {}", path.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        spelled.is_empty(),
        "failure codes are `domain::FailureCode`s, decided by the core:\n{}",
        spelled.join("\n")
    );
}

/// Every file or directory the architecture documents name in backquotes
/// (`src/…`, `crates/…`, `tests/…`, `scripts/…`, `docs/…`, `config/…`, or a
/// module path such as `store/plan.rs`) exists: the map matches the code.
#[test]
fn the_architecture_documents_name_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bases = ["", "src", "crates/domain/src", "tests"];
    let mut missing = Vec::new();
    for doc in ["docs/architecture.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).expect("the document reads");
        for quoted in text.split('`').skip(1).step_by(2) {
            let named = quoted.trim_end_matches('/');
            let is_path = !named.contains(' ')
                && named.contains('/')
                && (named.ends_with(".rs")
                    || ["src/", "crates/", "tests/", "scripts/", "docs/", "config/"]
                        .iter()
                        .any(|p| named.starts_with(p)));
            // Generated by the test command (installed tools, screenshots).
            let generated = named.contains("node_modules") || named.contains("/out/");
            if is_path
                && !generated
                && !named.contains(['*', '{', '<', '…'])
                && !bases.iter().any(|b| root.join(b).join(named).exists())
            {
                missing.push(format!("{doc}: `{quoted}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.join("\n")
    );
}
