//! The report as Markdown: the inline report of the result and `report.md`. The
//! agents' and syntheses' own Markdown is kept as they wrote it.

use std::fmt::Write;

use super::model::{usd, Report, Sources};

pub fn render(r: &Report) -> String {
    let mut md = format!("# {}\n\n", r.title);
    let _ = writeln!(md, "_Generated {}_\n", r.date);
    if r.simulated {
        md.push_str("> **Simulated run**: produced by the offline simulated provider, not by a real model.\n\n");
    }
    let _ = write!(md, "## Task\n\n{}\n\n", r.task);
    if let Some(f) = &r.summary {
        let _ = write!(md, "## Summary\n\n{f}\n\n");
    }
    if !r.groups.is_empty() {
        md.push_str("## Group syntheses\n\n");
        for g in &r.groups {
            let _ = write!(md, "### {}\n\n{}\n\n", g.heading, g.body);
        }
    }
    md.push_str("## Agent findings\n\n");
    for a in &r.agents {
        let _ = write!(md, "### {}\n\n", a.heading);
        let _ = write!(md, "_Model: {}_\n\n", a.model);
        if !a.tools.is_empty() {
            let _ = write!(md, "_Tools used: {}_\n\n", a.tools.join(", "));
        }
        if !a.cites.is_empty() {
            let cites: Vec<String> = a.cites.iter().map(|n| format!("[{n}]")).collect();
            let _ = write!(md, "_Sources: {}_\n\n", cites.join(" "));
        }
        match (&a.body, &a.error) {
            (Some(body), _) => {
                let _ = write!(md, "{body}\n\n");
            }
            (None, e) => {
                let _ = write!(md, "_Failed: {}_\n\n", e.as_deref().unwrap_or("no answer"));
            }
        }
    }
    md.push_str("## Costs\n\n| Step | Model | Input tokens | Output tokens | Cost (USD) |\n|---|---|---:|---:|---:|\n");
    for c in r.costs.iter().chain(std::iter::once(&r.total)) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            cell(&c.step),
            cell(&c.model),
            c.tokens.input,
            c.tokens.output,
            usd(c.cost)
        );
    }
    md.push_str("\n## Sources\n\n");
    match &r.sources {
        Sources::Cited(list) => {
            for s in list {
                let _ = writeln!(
                    md,
                    "{}. [{}]({}) — found by {} with {}",
                    s.n,
                    s.title.replace(['[', ']'], ""),
                    s.url,
                    s.agent,
                    s.tool
                );
            }
        }
        Sources::Agents(list) => {
            md.push_str(
                "No tool sources were used; the findings rest on these agents and models:\n\n",
            );
            for (agent, model) in list {
                let _ = writeln!(md, "- {agent}: {model}");
            }
        }
    }
    md
}

/// A table cell: a `|` would end it, a newline the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
