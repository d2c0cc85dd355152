//! Turns a model's decomposition answer into exactly `n` subtasks. Models answer in
//! many shapes: a JSON array (of strings or objects), the same inside a ```json
//! fence, or numbered/bulleted lines. Whatever cannot be read is filled with
//! generic angles on the task, so a sloppy answer never fails a workflow.

use serde_json::Value;

const OBJECT_KEYS: [&str; 5] = ["subtask", "task", "description", "title", "text"];

pub fn parse_subtasks(text: &str, n: usize, task: &str) -> Vec<String> {
    let mut items = from_json(text).unwrap_or_else(|| from_lines(text));
    items.retain(|s| !s.is_empty());
    items.dedup();
    items.truncate(n);
    let mut k = items.len();
    while items.len() < n {
        k += 1;
        items.push(format!("Aspect {k} of the task: {task}"));
    }
    items
}

fn from_json(text: &str) -> Option<Vec<String>> {
    let fenced = text
        .split("```")
        .nth(1)
        .map(|block| block.trim_start_matches("json").trim_start_matches("JSON"));
    let candidates = [fenced, Some(text), bracketed(text)];
    candidates.into_iter().flatten().find_map(|c| {
        let v: Value = serde_json::from_str(c.trim()).ok()?;
        let arr = match v {
            Value::Array(a) => a,
            // {"subtasks": [...]} and similar wrappers.
            Value::Object(o) => o.into_iter().find_map(|(_, v)| match v {
                Value::Array(a) => Some(a),
                _ => None,
            })?,
            _ => return None,
        };
        let items: Vec<String> = arr.into_iter().filter_map(item_text).collect();
        (!items.is_empty()).then_some(items)
    })
}

fn bracketed(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = text.rfind(']')?;
    (end > start).then(|| &text[start..=end])
}

fn item_text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Object(o) => OBJECT_KEYS
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(|s| s.trim().to_string()),
        _ => None,
    }
}

/// Strips a list marker (`1.`, `2)`, `-`, `*`, `•`); None when the line has none.
fn strip_marker(line: &str) -> Option<&str> {
    let l = line.trim_start();
    for bullet in ["- ", "* ", "• ", "+ "] {
        if let Some(rest) = l.strip_prefix(bullet) {
            return Some(rest);
        }
    }
    let digits = l.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let rest = &l[digits..];
        for sep in [". ", ") ", ": ", " - "] {
            if let Some(r) = rest.strip_prefix(sep) {
                return Some(r);
            }
        }
    }
    None
}

fn from_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let marked: Vec<String> = lines
        .iter()
        .filter_map(|l| strip_marker(l))
        .map(|s| s.trim().trim_matches('*').trim().to_string())
        .collect();
    if !marked.is_empty() {
        return marked;
    }
    // No list: one subtask per line, minus an introductory line ending in ':'.
    lines
        .into_iter()
        .filter(|l| !l.ends_with(':'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, n: usize) -> Vec<String> {
        parse_subtasks(text, n, "T")
    }

    #[test]
    fn json_array_of_strings() {
        assert_eq!(p(r#"["a", "b", "c"]"#, 3), vec!["a", "b", "c"]);
    }

    #[test]
    fn fenced_json_with_prose_around() {
        let t = "Here you go:\n```json\n[\"one\", \"two\"]\n```\nGood luck!";
        assert_eq!(p(t, 2), vec!["one", "two"]);
    }

    #[test]
    fn json_objects_and_wrappers() {
        let t = r#"{"subtasks": [{"title": "x"}, {"description": "y"}]}"#;
        assert_eq!(p(t, 2), vec!["x", "y"]);
    }

    #[test]
    fn array_embedded_in_prose() {
        assert_eq!(p("Sure. [\"p\", \"q\"] Done.", 2), vec!["p", "q"]);
    }

    #[test]
    fn numbered_lines() {
        let t = "Subtasks:\n1. First thing\n2) Second thing\n3: Third";
        assert_eq!(p(t, 3), vec!["First thing", "Second thing", "Third"]);
    }

    #[test]
    fn bulleted_lines() {
        let t = "- alpha\n* beta\n• gamma\n+ **delta**";
        assert_eq!(p(t, 4), vec!["alpha", "beta", "gamma", "delta"]);
    }

    #[test]
    fn too_many_are_cut_too_few_are_filled() {
        assert_eq!(p(r#"["a","b","c","d"]"#, 2), vec!["a", "b"]);
        let filled = p(r#"["a"]"#, 3);
        assert_eq!(filled[0], "a");
        assert_eq!(filled[1], "Aspect 2 of the task: T");
        assert_eq!(filled.len(), 3);
    }

    #[test]
    fn garbage_falls_back_to_generic_subtasks() {
        let out = p("", 3);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|s| s.contains("of the task: T")));
    }
}
