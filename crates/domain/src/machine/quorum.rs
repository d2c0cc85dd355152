//! The quorum: a workflow needs `min_successful_agents` (default half, rounded up,
//! at least one) successful agents to go on to synthesis.

use crate::{AgentResult, AgentStatus, FailureCode, WorkflowError};

/// `Err(insufficient_agents)` when fewer than `min` (at least 1) of `results`
/// succeeded; the message names the first error in the order given.
pub fn check<'a>(
    results: impl IntoIterator<Item = &'a AgentResult> + Clone,
    min: u32,
) -> Result<(), WorkflowError> {
    let (mut ok, mut total) = (0usize, 0usize);
    for r in results.clone() {
        total += 1;
        if r.status == AgentStatus::Completed {
            ok += 1;
        }
    }
    let min = min as usize;
    if ok >= min.max(1) {
        return Ok(());
    }
    let first = results
        .into_iter()
        .find_map(|r| r.error.clone())
        .unwrap_or_else(|| "no agents ran".into());
    Err(WorkflowError::new(
        FailureCode::InsufficientAgents,
        format!(
            "only {ok} of {total} agents succeeded, {min} needed (config.min_successful_agents); first error: {first}"
        ),
    ))
}
