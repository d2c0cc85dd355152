//! The report's one document model: title, task, date, summary, syntheses, agent
//! sections (with the tools and sources each used), the cost table and the
//! sources. Markdown, PDF and DOCX are renderings of it. The model is built from
//! the run's answers, not from any rendering, so the three say the same thing.

use crate::domain::{
    number_sources, AgentResult, AgentStatus, Decomposition, Source, SynthesisResult, TokenUsage,
};

/// What a report is made of, as the run has it after the final synthesis.
pub struct ReportInput<'a> {
    pub title: &'a str,
    pub task: &'a str,
    pub simulated: bool,
    /// When the report was generated (UTC, shown as a date and time).
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub decomposition: Option<&'a Decomposition>,
    pub agents: &'a [AgentResult],
    pub syntheses: &'a [SynthesisResult],
    pub final_synthesis: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub title: String,
    pub task: String,
    /// `2026-12-07 17:40 UTC`.
    pub date: String,
    pub simulated: bool,
    pub summary: Option<String>,
    pub groups: Vec<GroupSection>,
    pub agents: Vec<AgentSection>,
    pub costs: Vec<CostRow>,
    pub total: CostRow,
    pub sources: Sources,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSection {
    pub heading: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSection {
    /// `agent_01 — subtask`.
    pub heading: String,
    pub model: String,
    /// Names of the tools the agent used (empty without tools).
    pub tools: Vec<String>,
    /// Numbers of the sources (in `Sources::Cited`) it drew on.
    pub cites: Vec<u32>,
    /// Its findings (Markdown), or `None` when it failed.
    pub body: Option<String>,
    pub error: Option<String>,
}

impl AgentSection {
    /// The line under its heading: model, tools used, sources drawn on.
    pub fn about(&self) -> String {
        let mut about = format!("Model: {}", self.model);
        if !self.tools.is_empty() {
            about.push_str(&format!(" · Tools used: {}", self.tools.join(", ")));
        }
        if !self.cites.is_empty() {
            let cites: Vec<String> = self.cites.iter().map(|n| format!("[{n}]")).collect();
            about.push_str(&format!(" · Sources: {}", cites.join(" ")));
        }
        about
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub step: String,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost: f64,
}

/// Numbered citations when agents used tools that found sources; otherwise what
/// the findings rest on is the agents and their models.
#[derive(Debug, Clone, PartialEq)]
pub enum Sources {
    Cited(Vec<Source>),
    Agents(Vec<(String, String)>),
}

impl Report {
    pub fn build(input: &ReportInput<'_>) -> Report {
        // The numbering the result carries (`sources`): the decomposer, then
        // agents that completed.
        let done = |a: &&AgentResult| a.status == AgentStatus::Completed;
        let sources = number_sources(input.decomposition, input.agents.iter().filter(done));
        let agents: Vec<AgentSection> = input
            .agents
            .iter()
            .map(|a| agent_section(a, &sources))
            .collect();
        let groups = input
            .syntheses
            .iter()
            .filter(|s| s.level == "group")
            .map(|g| GroupSection {
                heading: format!("Group {} ({})", g.group.unwrap_or(0), g.sources.join(", ")),
                body: g.content.clone(),
            })
            .collect();
        let mut costs = Vec::new();
        if let Some(d) = input.decomposition {
            costs.push(row("decomposition", &d.model, d.tokens, d.cost));
        }
        for a in input.agents {
            costs.push(row(&a.agent_id, &a.model, a.tokens, a.cost));
        }
        for s in input.syntheses {
            let step = match s.group {
                Some(g) if s.level == "group" => format!("synthesis group {g}"),
                _ => "final synthesis".to_string(),
            };
            costs.push(row(&step, &s.model, s.tokens, s.cost));
        }
        let mut total = row("total", "", TokenUsage::default(), 0.0);
        for r in &costs {
            total.tokens.add(r.tokens);
            total.cost += r.cost;
        }
        let sources = if sources.is_empty() {
            Sources::Agents(
                input
                    .agents
                    .iter()
                    .map(|a| (a.agent_id.clone(), model_or_dash(&a.model)))
                    .collect(),
            )
        } else {
            Sources::Cited(sources)
        };
        Report {
            title: input.title.to_string(),
            task: input.task.to_string(),
            date: input.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            simulated: input.simulated,
            summary: input.final_synthesis.map(str::to_string),
            groups,
            agents,
            costs,
            total,
            sources,
        }
    }
}

fn row(step: &str, model: &str, tokens: TokenUsage, cost: f64) -> CostRow {
    CostRow {
        step: step.to_string(),
        model: model.to_string(),
        tokens,
        cost,
    }
}

fn model_or_dash(m: &str) -> String {
    if m.is_empty() {
        "—".into()
    } else {
        m.to_string()
    }
}

/// An agent's section: its model, the tools it used and the numbers of the
/// sources it drew on (in the workflow's numbering).
fn agent_section(a: &AgentResult, sources: &[Source]) -> AgentSection {
    let mut cites: Vec<u32> = a
        .sources
        .iter()
        .filter_map(|s| sources.iter().find(|x| x.url == s.url).map(|x| x.n))
        .collect();
    cites.dedup();
    AgentSection {
        heading: format!("{} — {}", a.agent_id, a.subtask),
        model: model_or_dash(&a.model),
        tools: a.tools_used.clone(),
        cites,
        body: a.error.is_none().then(|| a.content.clone()),
        error: a.error.clone(),
    }
}

/// One block of a Markdown text, for the renderers that lay text out themselves
/// (PDF, DOCX). Inline markup is dropped; the words stay.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Paragraph(String),
    /// A list item: nesting depth (from 0) and its marker (`•`, `1.`).
    Item(usize, String, String),
    Code(String),
    Quote(String),
}

/// Splits Markdown (an agent's answer, a synthesis) into blocks.
pub fn blocks(markdown: &str) -> Vec<Block> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut text = String::new();
    // Stack of lists: next number for ordered ones.
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut marker = String::new();
    let mut quote = 0usize;
    let mut code = false;
    let flush = |text: &mut String, out: &mut Vec<Block>, make: &dyn Fn(String) -> Block| {
        let t = text.trim().to_string();
        text.clear();
        if !t.is_empty() {
            out.push(make(t));
        }
    };
    for ev in Parser::new(markdown) {
        match ev {
            Event::Start(Tag::Item) => {
                flush(&mut text, &mut out, &|t| Block::Paragraph(t));
                marker = match lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}.", *n - 1)
                    }
                    _ => "•".into(),
                };
            }
            Event::Start(Tag::List(start)) => {
                if !text.trim().is_empty() {
                    let (d, m) = (lists.len().saturating_sub(1), marker.clone());
                    flush(&mut text, &mut out, &move |t| Block::Item(d, m.clone(), t));
                }
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::BlockQuote(_)) => quote += 1,
            Event::End(TagEnd::BlockQuote(_)) => quote = quote.saturating_sub(1),
            Event::Start(Tag::CodeBlock(_)) => code = true,
            Event::End(TagEnd::CodeBlock) => {
                code = false;
                let t = text.trim_end().to_string();
                text.clear();
                if !t.is_empty() {
                    out.push(Block::Code(t));
                }
            }
            Event::End(TagEnd::Heading(level)) => {
                let l = level as u8;
                flush(&mut text, &mut out, &move |t| Block::Heading(l, t));
            }
            Event::End(TagEnd::Item) => {
                let (d, m) = (lists.len().saturating_sub(1), marker.clone());
                flush(&mut text, &mut out, &move |t| Block::Item(d, m.clone(), t));
            }
            Event::End(TagEnd::Paragraph) => {
                if lists.is_empty() {
                    if quote > 0 {
                        flush(&mut text, &mut out, &|t| Block::Quote(t));
                    } else {
                        flush(&mut text, &mut out, &|t| Block::Paragraph(t));
                    }
                } else {
                    text.push(' ');
                }
            }
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak => text.push(if code { '\n' } else { ' ' }),
            Event::HardBreak => text.push('\n'),
            Event::Html(t) | Event::InlineHtml(t) => text.push_str(&t),
            Event::Rule => flush(&mut text, &mut out, &|t| Block::Paragraph(t)),
            _ => {}
        }
    }
    flush(&mut text, &mut out, &|t| Block::Paragraph(t));
    out
}

/// `$0.0123` with enough digits for the small costs of single calls.
pub fn usd(cost: f64) -> String {
    if cost == 0.0 {
        "$0.00".into()
    } else if cost.abs() < 0.01 {
        format!("${cost:.6}")
    } else {
        format!("${cost:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_blocks() {
        let b = blocks("# Head\n\nSome *text* here.\n\n- one\n- two\n\n1. first\n2. second\n\n```\ncode\n```\n\n> quoted");
        assert_eq!(
            b,
            vec![
                Block::Heading(1, "Head".into()),
                Block::Paragraph("Some text here.".into()),
                Block::Item(0, "•".into(), "one".into()),
                Block::Item(0, "•".into(), "two".into()),
                Block::Item(0, "1.".into(), "first".into()),
                Block::Item(0, "2.".into(), "second".into()),
                Block::Code("code".into()),
                Block::Quote("quoted".into()),
            ]
        );
    }

    fn agent(i: u32, urls: &[&str]) -> AgentResult {
        let sources: Vec<serde_json::Value> = urls
            .iter()
            .map(|u| serde_json::json!({"url": u, "title": format!("T {u}"), "tool": "web.fetch"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "agent_id": format!("agent_{i:02}"), "agent_type": "research", "subtask": "s",
            "content": "findings", "status": "completed", "model": "m", "cost": 0.25,
            "tokens": {"input": 10, "output": 5, "total": 15}, "execution_time": 1.0,
            "error": null, "step_key": format!("wf/agent/{i}"),
            "tools_used": if urls.is_empty() { vec![] } else { vec!["web.fetch"] },
            "sources": sources,
        }))
        .unwrap()
    }

    fn report(agents: &[AgentResult]) -> Report {
        Report::build(&ReportInput {
            title: "T",
            task: "t",
            simulated: false,
            generated_at: chrono::DateTime::UNIX_EPOCH,
            decomposition: None,
            agents,
            syntheses: &[],
            final_synthesis: Some("sum"),
        })
    }

    #[test]
    fn sources_are_numbered_once_and_cited_per_agent() {
        let r = report(&[
            agent(1, &["http://a", "http://b"]),
            agent(2, &["http://b", "http://c"]),
        ]);
        let Sources::Cited(list) = &r.sources else {
            panic!("no citations: {:?}", r.sources);
        };
        let urls: Vec<&str> = list.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(urls, ["http://a", "http://b", "http://c"]);
        assert_eq!(r.agents[1].cites, [2, 3]);
        assert_eq!(r.agents[0].tools, ["web.fetch"]);
        let md = super::super::markdown::render(&r);
        assert!(
            md.contains("1. [T http://a](http://a) — found by agent_01 with web.fetch"),
            "{md}"
        );
        assert!(md.contains("_Sources: [2] [3]_"), "{md}");
        assert!((r.total.cost - 0.5).abs() < 1e-12);
    }

    #[test]
    fn without_sources_the_agents_and_models_are_listed() {
        let r = report(&[agent(1, &[]), agent(2, &[])]);
        assert_eq!(
            r.sources,
            Sources::Agents(vec![
                ("agent_01".into(), "m".into()),
                ("agent_02".into(), "m".into())
            ])
        );
        let md = super::super::markdown::render(&r);
        assert!(md.contains("- agent_02: m"), "{md}");
    }

    #[test]
    fn costs_read_well() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.5), "$0.5000");
        assert_eq!(usd(0.000123), "$0.000123");
    }
}
