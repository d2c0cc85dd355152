//! The Markdown report every finished workflow carries as its first document.

use crate::domain::{AgentResult, Document, Source, SynthesisResult};

pub fn markdown(
    title: &str,
    task: &str,
    simulated: bool,
    agents: &[AgentResult],
    syntheses: &[SynthesisResult],
    final_synthesis: Option<&str>,
    sources: &[Source],
) -> Document {
    let mut md = format!("# {title}\n\n");
    if simulated {
        md.push_str("> **Simulated run**: produced by the offline simulated provider, not by a real model.\n\n");
    }
    md.push_str(&format!("## Task\n\n{task}\n\n"));
    if let Some(f) = final_synthesis {
        md.push_str(&format!("## Summary\n\n{f}\n\n"));
    }
    let groups: Vec<&SynthesisResult> = syntheses.iter().filter(|s| s.level == "group").collect();
    if !groups.is_empty() {
        md.push_str("## Group syntheses\n\n");
        for g in groups {
            md.push_str(&format!(
                "### Group {} ({})\n\n{}\n\n",
                g.group.unwrap_or(0),
                g.sources.join(", "),
                g.content
            ));
        }
    }
    md.push_str("## Agent findings\n\n");
    for a in agents {
        md.push_str(&format!("### {} — {}\n\n", a.agent_id, a.subtask));
        if !a.tools_used.is_empty() {
            md.push_str(&format!("_Tools used: {}_\n\n", a.tools_used.join(", ")));
        }
        match &a.error {
            Some(e) => md.push_str(&format!("_Failed: {e}_\n\n")),
            None => md.push_str(&format!("{}\n\n", a.content)),
        }
    }
    if !sources.is_empty() {
        md.push_str("## Sources\n\n");
        for s in sources {
            md.push_str(&format!(
                "{}. [{}]({}) — found by {} with {}\n",
                s.n, s.title, s.url, s.agent, s.tool
            ));
        }
        md.push('\n');
    }
    Document {
        name: "report.md".into(),
        format: "markdown".into(),
        content: md,
    }
}
