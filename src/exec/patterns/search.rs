//! `search`: agents over the requested agent types (one per type by default;
//! `num_agents` cycles through them) → one synthesis → report.

use super::documents::{self, Material};
use super::{material, run_agents, successful, synthesize, AgentSpec, Roles};
use crate::domain::SearchConfig;
use crate::exec::{Run, Stop};

pub async fn run(run: &Run, cfg: &SearchConfig) -> Result<(), Stop> {
    let n = cfg.num_agents.unwrap_or(cfg.agent_types.len() as u32) as usize;
    let specs = cfg
        .agent_types
        .iter()
        .cycle()
        .take(n)
        .enumerate()
        .map(|(i, t)| AgentSpec {
            agent_id: format!("{t}_agent_{:02}", i + 1),
            agent_type: t.clone(),
            subtask: format!("{t} search: {}", run.task),
        })
        .collect();
    let results = run_agents(run, specs, cfg.max_concurrent_agents).await?;
    let ok = successful(run, &results)?;
    let mut syntheses = Vec::new();
    let mut final_synthesis = None;
    if cfg.enable_synthesis {
        let roles = Roles::from(&cfg.exec());
        let sources = ok.iter().map(|r| r.agent_id.clone()).collect();
        let numbered = super::numbered(None, &ok);
        let fin = synthesize(
            run,
            &roles,
            "final",
            None,
            sources,
            material(&ok, &numbered),
        )
        .await?;
        final_synthesis = Some(fin.content.clone());
        syntheses.push(fin);
    }
    documents::generate(
        run,
        Material {
            decomposition: None,
            agents: &results,
            syntheses: &syntheses,
            final_synthesis,
        },
    )
    .await
}
