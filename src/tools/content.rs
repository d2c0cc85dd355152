//! A tool result (`CallToolResult` as JSON) turned into what the model is shown:
//! its text, cut to `tools.max_result_bytes`, and the sources it names
//! (`resource_link`s, embedded resources, `url`/`title` pairs in structured
//! content, http(s) URLs in the text). Pure functions; nothing here trusts the
//! result beyond reading it as data.

use serde_json::Value;

use crate::domain::FoundSource;

/// Sources kept from one result at most.
const MAX_SOURCES: usize = 20;
/// URLs longer than this are not sources.
const MAX_URL: usize = 2048;

pub struct Rendered {
    pub text: String,
    /// Bytes of the text before it was cut.
    pub size: usize,
    pub truncated: bool,
    pub sources: Vec<FoundSource>,
    /// The tool said its call failed (`isError`).
    pub is_error: bool,
}

pub fn render(result: &Value, max_bytes: usize) -> Rendered {
    let mut text = String::new();
    let mut sources: Vec<FoundSource> = Vec::new();
    let blocks = result["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for b in blocks {
        match b["type"].as_str().unwrap_or("") {
            "text" => push(&mut text, b["text"].as_str().unwrap_or("")),
            "resource_link" => {
                let uri = b["uri"].as_str().unwrap_or("");
                let title = b["title"].as_str().or(b["name"].as_str()).unwrap_or(uri);
                push(&mut text, &format!("[{title}]({uri})"));
                if let Some(d) = b["description"].as_str() {
                    push(&mut text, d);
                }
                add(&mut sources, uri, Some(title));
            }
            "resource" => {
                let r = &b["resource"];
                let uri = r["uri"].as_str().unwrap_or("");
                push(&mut text, &format!("Resource {uri}:"));
                push(&mut text, r["text"].as_str().unwrap_or("[binary content]"));
                add(
                    &mut sources,
                    uri,
                    r["title"].as_str().or(r["name"].as_str()),
                );
            }
            other => push(&mut text, &format!("[{other} content omitted]")),
        }
    }
    if let Some(s) = result.get("structuredContent").filter(|v| !v.is_null()) {
        if text.is_empty() {
            text = s.to_string();
        }
        structured_sources(s, &mut sources, 0);
    }
    let size = text.len();
    let truncated = size > max_bytes;
    if truncated {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!(
            "\n[truncated: {cut} of {size} bytes shown (tools.max_result_bytes)]"
        ));
    }
    // URLs in the text the model actually sees; a heading names the first.
    let title = heading(&text);
    for (i, url) in urls_in(&text).into_iter().enumerate() {
        add(&mut sources, &url, if i == 0 { title } else { None });
    }
    Rendered {
        text,
        size,
        truncated,
        sources,
        is_error: result["isError"].as_bool().unwrap_or(false),
    }
}

fn push(text: &mut String, s: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(s);
}

fn add(sources: &mut Vec<FoundSource>, url: &str, title: Option<&str>) {
    let url = url.trim();
    if url.is_empty()
        || url.len() > MAX_URL
        || !url.contains(':')
        || sources.len() >= MAX_SOURCES
        || sources.iter().any(|s| s.url == url)
    {
        return;
    }
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(300).collect())
        .unwrap_or_else(|| url.to_string());
    sources.push(FoundSource {
        url: url.to_string(),
        title,
    });
}

/// `{"url": …, "title": …}` objects anywhere in structured content (a search
/// tool's hits), a few levels deep.
fn structured_sources(v: &Value, out: &mut Vec<FoundSource>, depth: u32) {
    if depth > 4 {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(u) = m.get("url").or(m.get("uri")).and_then(Value::as_str) {
                if u.starts_with("http://") || u.starts_with("https://") {
                    add(
                        out,
                        u,
                        m.get("title").or(m.get("name")).and_then(Value::as_str),
                    );
                }
            }
            for x in m.values() {
                structured_sources(x, out, depth + 1);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| structured_sources(x, out, depth + 1)),
        _ => {}
    }
}

/// The first Markdown heading (`# Title`) of the text.
fn heading(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("# "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// http(s) URLs in free text, in order, each once.
fn urls_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = ["http://", "https://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "<>\"'`()[]{}|\\^".contains(c))
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
        if url.len() > "https://".len() && !out.iter().any(|u| u == url) {
            out.push(url.to_string());
        }
        if out.len() >= MAX_SOURCES {
            break;
        }
        rest = &tail[end.max(1)..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_urls_links_and_structured_hits_become_sources() {
        let r = json!({
            "content": [
                {"type": "text", "text": "Contents of http://127.0.0.1:8080/page.html:\n# Local Page\nSee https://example.org/a, and (https://example.org/b)."},
                {"type": "resource_link", "uri": "file:///kb/notes.md", "name": "notes.md", "title": "Notes"},
                {"type": "image", "data": "xx", "mimeType": "image/png"}
            ],
            "structuredContent": {"hits": [{"url": "https://example.com/hit", "title": "Hit"}]}
        });
        let out = render(&r, 65536);
        let got: Vec<(&str, &str)> = out
            .sources
            .iter()
            .map(|s| (s.url.as_str(), s.title.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("file:///kb/notes.md", "Notes"),
                ("https://example.com/hit", "Hit"),
                ("http://127.0.0.1:8080/page.html", "Local Page"),
                ("https://example.org/a", "https://example.org/a"),
                ("https://example.org/b", "https://example.org/b"),
            ]
        );
        assert!(out.text.contains("[image content omitted]"));
        assert!(!out.is_error && !out.truncated);
    }

    #[test]
    fn long_results_are_cut_on_a_char_boundary_and_say_so() {
        let r = json!({"content": [{"type": "text", "text": "é".repeat(3000)}], "isError": true});
        let out = render(&r, 1025);
        assert!(out.truncated && out.is_error);
        assert_eq!(out.size, 6000);
        assert!(out.text.starts_with(&"é".repeat(512)));
        assert!(out.text.contains("[truncated: 1024 of 6000 bytes shown"));
    }
}
