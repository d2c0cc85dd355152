//! `search`: one agent per requested agent type → one synthesis → report.

use super::{material, report, run_agents, successful, synthesize, AgentSpec};
use crate::domain::SearchConfig;
use crate::exec::{Run, Step, Stop};

pub async fn run(run: &Run, cfg: &SearchConfig) -> Result<(), Stop> {
    let specs = cfg
        .agent_types
        .iter()
        .enumerate()
        .map(|(i, t)| AgentSpec {
            agent_id: format!("{t}_agent_{:02}", i + 1),
            agent_type: t.clone(),
            subtask: format!("{t} search: {}", run.task),
        })
        .collect();
    let results = run_agents(run, specs, cfg.max_concurrent_agents).await?;
    let ok = successful(&results)?;
    let sources = ok.iter().map(|r| r.agent_id.clone()).collect();
    let fin = synthesize(run, "final", None, sources, material(&ok)).await?;
    let final_synthesis = Some(fin.content.clone());
    let syntheses = vec![fin];
    let doc = report::markdown(
        &run.title,
        &run.task,
        run.provider.simulated(),
        &results,
        &syntheses,
        final_synthesis.as_deref(),
    );
    run.step(Step::Documents {
        documents: vec![doc],
        final_synthesis,
    })
    .await?;
    Ok(())
}
