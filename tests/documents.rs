//! Report documents: `document_formats` on every route, the documents
//! step, the list and download routes with their headers, and the documents
//! themselves checked by outside tools: poppler's `pdftotext`, `pdftoppm`,
//! `pdfinfo` and `pdffonts` (Debian poppler-utils) and python-docx (PyPI,
//! pinned, in the venv scripts/test.sh makes: `MCPO_DOCS_PYTHON`, default
//! /var/tmp/mcpo-docs-venv/bin/python).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::pg::PgDb;
use crate::common::*;

const TITLE: &str = "Überblick: 研究 und Ελληνικά";

fn all_formats(task: &str, agents: u32) -> Value {
    json!({"pattern": "research", "task": task, "title": TITLE,
           "config": {"num_agents": agents, "document_formats": ["markdown", "pdf", "docx"]}})
}

/// Runs an outside tool; its stdout, or a failure naming what is missing.
fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is not installed ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn python() -> String {
    std::env::var("MCPO_DOCS_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/mcpo-docs-venv/bin/python".into())
}

struct Download {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn download(s: &Server, id: &str, name: &str, etag: Option<&str>) -> Download {
    let mut req = s
        .http
        .get(s.url(&format!("/v1/workflows/{id}/documents/{name}")));
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    let r = req.send().await.expect("GET document");
    Download {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().await.expect("body").to_vec(),
    }
}

fn header<'a>(d: &'a Download, name: &str) -> &'a str {
    d.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Lists the documents and downloads each, checking the headers against the
/// list; returns the bodies by name.
async fn fetch_all(s: &Server, id: &str) -> Vec<(String, Vec<u8>)> {
    let list = s.get(&format!("/v1/workflows/{id}/documents")).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let mut out = Vec::new();
    for d in list.body["documents"].as_array().expect("documents") {
        let name = d["name"].as_str().unwrap();
        assert_eq!(d["url"], format!("/v1/workflows/{id}/documents/{name}"));
        let got = download(s, id, name, None).await;
        assert_eq!(got.status, 200, "{name}");
        let sha = hex::encode(Sha256::digest(&got.body));
        assert_eq!(d["sha256"], sha.as_str(), "{name}: sha256 as listed");
        assert_eq!(d["bytes"], got.body.len() as u64, "{name}: bytes as listed");
        assert_eq!(header(&got, "content-length"), got.body.len().to_string());
        assert_eq!(header(&got, "etag"), format!("\"{sha}\""));
        assert_eq!(
            header(&got, "content-disposition"),
            format!("attachment; filename=\"{name}\"")
        );
        assert_eq!(
            header(&got, "content-type"),
            d["content_type"].as_str().unwrap()
        );
        let again = download(s, id, name, Some(&format!("\"{sha}\""))).await;
        assert_eq!(again.status, 304, "If-None-Match with the ETag");
        out.push((name.to_string(), got.body));
    }
    out
}

fn body_of<'a>(docs: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &docs.iter().find(|(n, _)| n == name).expect(name).1
}

/// pdftotext's text of the PDF, after checking every font is embedded
/// (pdffonts) and page 1 renders (pdftoppm); also its page count (pdfinfo).
fn check_pdf(dir: &Path, pdf: &[u8]) -> (String, u32) {
    assert!(pdf.starts_with(b"%PDF-"));
    let path = dir.join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let p = path.to_str().unwrap();
    let fonts = tool("pdffonts", &[p]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for row in &rows {
        // name type encoding emb sub uni object ID
        let cols: Vec<&str> = row.split_whitespace().collect();
        let n = cols.len();
        assert!(n >= 6 && cols[n - 5] == "yes", "font not embedded: {row}");
        assert_eq!(cols[n - 3], "yes", "font without a ToUnicode map: {row}");
    }
    let png = dir.join("page");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "40",
            "-f",
            "1",
            "-l",
            "1",
            p,
            png.to_str().unwrap(),
        ],
    );
    let rendered: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("page"))
        .collect();
    assert_eq!(rendered.len(), 1, "page 1 rendered to one PNG");
    assert!(std::fs::metadata(rendered[0].path()).unwrap().len() > 1000);
    let info = tool("pdfinfo", &[p]);
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo pages");
    (tool("pdftotext", &[p, "-"]), pages)
}

/// What python-docx finds: the first Heading 1 and the table headed "Step".
fn check_docx(dir: &Path, docx: &[u8]) -> Value {
    let path = dir.join("report.docx");
    std::fs::write(&path, docx).unwrap();
    let script = r#"
import json, sys, docx
d = docx.Document(sys.argv[1])
heads = [(p.style.name, p.text) for p in d.paragraphs if p.style.name.startswith("Heading")]
tables = [[[c.text for c in r.cells] for r in t.rows] for t in d.tables]
print(json.dumps({"headings": heads, "tables": tables}))
"#;
    let out = tool(&python(), &["-c", script, path.to_str().unwrap()]);
    serde_json::from_str(&out).expect("python-docx output")
}

async fn events(s: &Server, id: &str) -> Vec<SseEvent> {
    s.sse(id, None, 20 * SEC).await
}

#[tokio::test]
async fn pdf_docx_and_markdown_are_generated_listed_and_downloadable() {
    let s = server().latency_ms(2).start();
    let id = s
        .create(all_formats("Wie beeinflusst 研究 die Ελληνικά Sprache?", 4))
        .await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let r = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    let names: Vec<&str> = r["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["report.md", "report.pdf", "report.docx"]);
    let docs = fetch_all(&s, &id).await;
    // SQLite keeps the Markdown compressed (it is served as generated, above:
    // bytes and sha256 checked on the download).
    let stored = sqlite_value(
        &s.dir.join("orchestrator.db"),
        &format!(
            "SELECT coalesce(encoding, '-') || ':' || (length(body) * 2 < bytes) FROM documents
             WHERE workflow_id = '{id}' AND name = 'report.md'"
        ),
    );
    assert_eq!(stored, "codec:1", "stored at under half its size");

    // The Markdown download is the inline report, byte for byte.
    let md = std::str::from_utf8(body_of(&docs, "report.md")).unwrap();
    assert_eq!(md, r["documents"][0]["content"].as_str().unwrap());
    assert!(md.starts_with(&format!("# {TITLE}\n")));
    assert!(md.contains("## Costs") && md.contains("## Sources"));

    let (text, pages) = check_pdf(&s.dir, body_of(&docs, "report.pdf"));
    for needle in [
        "Überblick",
        "研究",
        "Ελληνικά",
        "Agent findings",
        "Costs",
        "Page 1 of",
    ] {
        assert!(text.contains(needle), "pdftotext lacks {needle:?}:\n{text}");
    }
    assert!(pages >= 1);

    let found = check_docx(&s.dir, body_of(&docs, "report.docx"));
    assert_eq!(found["headings"][0], json!(["Heading 1", TITLE]), "{found}");
    let table = found["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t[0][0] == "Step")
        .unwrap_or_else(|| panic!("no cost table: {found}"));
    assert_eq!(table[0][4], "Cost (USD)");
    // header, decomposition, 4 agents, 2 groups (of 3) and the final, total
    assert_eq!(
        table.as_array().unwrap().len(),
        1 + 1 + 4 + 3 + 1,
        "{table}"
    );
    assert_eq!(table.as_array().unwrap().last().unwrap()[0], "total");

    let evs = events(&s, &id).await;
    let gen: Vec<&SseEvent> = evs
        .iter()
        .filter(|e| e.event.as_deref() == Some("documents_generated"))
        .collect();
    assert_eq!(gen.len(), 1);
    assert_eq!(gen[0].data["data"]["count"], 3);
    assert_eq!(gen[0].data["data"]["step_key"], format!("{id}/documents"));

    let m = s.get("/metrics").await.body;
    let m = m.as_str().unwrap();
    for f in ["markdown", "pdf", "docx"] {
        assert!(
            m.lines().any(|l| l.starts_with("documents_generated_total")
                && l.contains(&format!("format=\"{f}\""))
                && l.contains("outcome=\"ok\"")),
            "no documents_generated_total for {f}"
        );
    }
    assert!(m.contains("document_generation_seconds_bucket"));
}

#[tokio::test]
async fn a_20_agent_report_is_a_multi_page_pdf_with_page_numbers() {
    let s = server().latency_ms(1).start();
    let body = json!({"pattern": "research", "task": "A long survey of 研究 methods", "title": "Long report",
        "config": {"num_agents": 20, "max_concurrent_agents": 10, "document_formats": ["pdf"]}});
    let id = s.create(body).await;
    s.wait_status(&id, "completed", 90 * SEC).await;
    let docs = fetch_all(&s, &id).await;
    assert_eq!(docs.len(), 1);
    let (text, pages) = check_pdf(&s.dir, body_of(&docs, "report.pdf"));
    assert!(pages > 1, "20 agents fit on {pages} page(s)");
    assert!(text.contains(&format!("Page 1 of {pages}")), "{text}");
    assert!(text.contains(&format!("Page {pages} of {pages}")));
    assert!(text.contains("agent_20"));
}

#[tokio::test]
async fn document_formats_are_checked_and_default_from_config() {
    let s = server()
        .latency_ms(1)
        .env(
            "MCPO__DOCUMENTS__DEFAULT_FORMATS",
            "[\"markdown\", \"docx\"]",
        )
        .start();
    let bad = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "research", "task": "t", "config": {"document_formats": ["pdf", "odt"]}}),
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert_eq!(bad.body["error"]["code"], "validation_error");
    assert_eq!(bad.body["error"]["field"], "config.document_formats[1]");
    let twice = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "search", "task": "t", "config": {"document_formats": ["pdf", "pdf"]}}),
        )
        .await;
    assert_eq!(twice.body["error"]["field"], "config.document_formats[1]");
    let old = s
        .post(
            "/tools/orchestrate_search",
            &json!({"query": "q", "document_formats": ["html"]}),
        )
        .await;
    assert_eq!(old.status, 400, "{:?}", old.body);
    assert_eq!(old.body["success"], false);
    assert!(old.body["error"]
        .as_str()
        .unwrap()
        .contains("document_formats[0]"));

    // No formats named: the configured default, recorded in the workflow.
    let id = s.create(research("defaults", 3)).await;
    let wf = s.wait_status(&id, "completed", 30 * SEC).await;
    assert_eq!(
        wf["config"]["document_formats"],
        json!(["markdown", "docx"])
    );
    let list = s.get(&format!("/v1/workflows/{id}/documents")).await;
    let formats: Vec<&str> = list.body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["markdown", "docx"]);
    let missing = s
        .get(&format!("/v1/workflows/{id}/documents/report.pdf"))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "document_not_found");
}

#[tokio::test]
async fn a_failing_format_fails_only_its_document() {
    // Big enough for the Markdown report, too small for a PDF with its fonts.
    let s = server()
        .latency_ms(1)
        .env("MCPO__DOCUMENTS__MAX_BYTES", 12_000)
        .start();
    let id = s.create(all_formats("too big to print", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let list = s.get(&format!("/v1/workflows/{id}/documents")).await.body;
    let pdf = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "report.pdf")
        .unwrap()
        .clone();
    assert!(pdf["error"]
        .as_str()
        .unwrap()
        .contains("documents.max_bytes"));
    assert!(pdf["url"].is_null());
    let md = download(&s, &id, "report.md", None).await;
    assert_eq!(md.status, 200, "the Markdown report stands");
    let got = s
        .get(&format!("/v1/workflows/{id}/documents/report.pdf"))
        .await;
    assert_eq!(got.status, 404);
    assert_eq!(got.body["error"]["code"], "document_failed");
    let evs = events(&s, &id).await;
    let err = evs
        .iter()
        .find(|e| e.event.as_deref() == Some("error"))
        .expect("an error event");
    assert_eq!(err.data["data"]["document"], "report.pdf");
    let gen = evs
        .iter()
        .find(|e| e.event.as_deref() == Some("documents_generated"))
        .unwrap();
    assert_eq!(gen.data["data"]["failed"][0]["name"], "report.pdf");
    let m = s.get("/metrics").await.body;
    assert!(m
        .as_str()
        .unwrap()
        .lines()
        .any(|l| l.starts_with("documents_generated_total")
            && l.contains("format=\"pdf\"")
            && l.contains("outcome=\"error\"")));
}

#[tokio::test]
async fn old_routes_list_the_documents_in_the_old_shape() {
    let s = server().latency_ms(1).start();
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "old clients", "num_agents": 3, "document_formats": ["markdown", "pdf"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["task_id"].as_str().unwrap().to_string();
    s.wait_status(&id, "completed", 30 * SEC).await;
    let st = s
        .post("/tools/get_orchestration_status", &json!({"task_id": id}))
        .await;
    let docs = st.body["result"]["generated_documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2, "{:?}", st.body);
    assert_eq!(docs[0]["format"], "markdown");
    assert!(docs[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("# old clients"));
    assert_eq!(docs[1]["name"], "report.pdf");
    assert!(docs[1]["size_bytes"].as_u64().unwrap() > 1000);
    assert_eq!(
        docs[1]["url"],
        format!("/v1/workflows/{id}/documents/report.pdf")
    );
}

#[tokio::test]
async fn documents_are_stored_in_postgres_too() {
    let db = PgDb::new();
    let s = server()
        .env("MCPO__POSTGRES__URL", &db.url)
        .latency_ms(1)
        .start();
    let id = s.create(all_formats("postgres documents", 3)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let docs = fetch_all(&s, &id).await;
    assert_eq!(docs.len(), 3);
    let rows = db.query(&format!(
        "SELECT name || ':' || bytes FROM documents WHERE workflow_id = '{id}' ORDER BY name"
    ));
    assert_eq!(rows.lines().count(), 3, "{rows}");
    assert!(rows.contains("report.pdf:"));
}

/// Reads the workflow's SSE stream until an event `done` accepts has been sent
/// (an event is sent once committed; the stream stays open while it runs).
async fn wait_for_event(s: &Server, id: &str, done: impl Fn(&SseEvent) -> bool) {
    let mut r = s
        .http
        .get(s.url(&format!("/v1/workflows/{id}/events")))
        .send()
        .await
        .expect("SSE");
    let mut seen = String::new();
    let found = tokio::time::timeout(60 * SEC, async {
        while let Ok(Some(chunk)) = r.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if parse_sse(&seen).iter().any(&done) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "never saw the event in:\n{seen}");
}

#[tokio::test]
async fn a_crash_while_generating_generates_the_documents_again_on_resume() {
    let dir = new_dir();
    let mut s = server()
        .dir(&dir)
        .latency_ms(1)
        .env("MCPO_TEST_FAULTS", "1")
        // Generation waits: the process is killed inside the documents step.
        .env("MCPO_TEST_DOCUMENTS_DELAY_MS", 60_000)
        .start();
    let id = s.create(all_formats("crash while printing", 3)).await;
    wait_for_event(&s, &id, |e| {
        e.event.as_deref() == Some("synthesis_completed") && e.data["data"]["level"] == "final"
    })
    .await;
    s.kill9();
    let s = server().dir(&dir).latency_ms(1).start();
    s.wait_status(&id, "completed", 60 * SEC).await;
    let docs = fetch_all(&s, &id).await;
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["report.md", "report.pdf", "report.docx"]);
    let evs = events(&s, &id).await;
    let kinds: Vec<&str> = evs.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "documents_generated")
            .count(),
        1,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"workflow_resumed"), "{kinds:?}");
    // The LLM steps before the crash were reused, not called again.
    let m = s.get("/metrics").await.body;
    let reused: f64 = m
        .as_str()
        .unwrap()
        .lines()
        .find(|l| l.starts_with("llm_steps_reused_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        reused >= 1.0 + 3.0 + 2.0,
        "decomposition, agents, syntheses reused: {reused}"
    );
}

#[tokio::test]
async fn archived_documents_are_served_from_the_archive_object() {
    let mut s = crate::common::archiving::local(server()).start();
    let dir = s.dir.clone();
    let id = s.create(all_formats("archive me", 3)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let before = fetch_all(&s, &id).await;
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);
    let out = crate::common::archiving::run_archive(&dir, &[], &["--older-than", "0s"]);
    assert_eq!(
        crate::common::archiving::count(&out, "archived"),
        1,
        "{out}"
    );
    let c = rusqlite::Connection::open(dir.join("orchestrator.db")).unwrap();
    let rows: i64 = c
        .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the documents left the store with the workflow");
    let s = crate::common::archiving::local(server()).dir(&dir).start();
    let after = fetch_all(&s, &id).await;
    assert_eq!(before, after, "the same bytes from the archive");
    let pdf = download(&s, &id, "report.pdf", None).await;
    assert_eq!(header(&pdf, "x-served-from"), "archive");
}

#[tokio::test]
async fn mcp_reads_documents_as_resources_binary_as_blobs() {
    use base64::Engine;
    let s = server().latency_ms(1).start();
    let id = s.create(all_formats("mcp documents", 3)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let pdf = download(&s, &id, "report.pdf", None).await;
    let sid = crate::common::mcp_client::session(&s).await;
    let t =
        crate::common::mcp_client::call(&s, &sid, 2, "resources/templates/list", json!({})).await;
    let templates = t.reply()["result"]["resourceTemplates"].to_string();
    assert!(templates.contains("orchestrator://workflows/{id}/documents/{name}"));
    let uri = format!("orchestrator://workflows/{id}/documents/report.pdf");
    let r =
        crate::common::mcp_client::call(&s, &sid, 3, "resources/read", json!({"uri": uri})).await;
    let c = &r.reply()["result"]["contents"][0];
    assert_eq!(c["mimeType"], "application/pdf");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(c["blob"].as_str().expect("a blob"))
        .unwrap();
    assert_eq!(blob, pdf.body);
    let uri = format!("orchestrator://workflows/{id}/documents/report.md");
    let r =
        crate::common::mcp_client::call(&s, &sid, 4, "resources/read", json!({"uri": uri})).await;
    let c = &r.reply()["result"]["contents"][0];
    assert!(c["text"]
        .as_str()
        .unwrap()
        .starts_with(&format!("# {TITLE}")));
    let uri = format!("orchestrator://workflows/{id}/documents/report.odt");
    let r =
        crate::common::mcp_client::call(&s, &sid, 5, "resources/read", json!({"uri": uri})).await;
    assert_eq!(r.reply()["error"]["data"]["code"], "document_not_found");
}
