//! Why a workflow failed: the codes the core (and a run's own steps) decide,
//! typed. Each is serialised as the stable snake_case string the API documents
//! (`error.code` of a failed workflow, `error_code` of the old API).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The research decomposition's provider call failed.
    DecompositionFailed,
    /// A synthesis's provider call failed.
    SynthesisFailed,
    /// Fewer agents succeeded than `min_successful` (partial results kept).
    InsufficientAgents,
    /// The workflow reached its own budget (`budget_usd`, `max_tokens_total`).
    BudgetExceeded,
    /// Its key reached its daily budget (`auth.keys.budget_usd_per_day`).
    SpendLimitReached,
    /// The run took longer than `limits.max_workflow_duration`.
    DeadlineExceeded,
    /// Its provider is not configured here.
    ProviderUnavailable,
    /// Its resumed runs kept dying (`execution.max_resumes`).
    ResumeLimitReached,
    /// The run was lost (a panic, an executor thread gone) or broke.
    InternalError,
}

impl FailureCode {
    pub const ALL: [FailureCode; 9] = [
        FailureCode::DecompositionFailed,
        FailureCode::SynthesisFailed,
        FailureCode::InsufficientAgents,
        FailureCode::BudgetExceeded,
        FailureCode::SpendLimitReached,
        FailureCode::DeadlineExceeded,
        FailureCode::ProviderUnavailable,
        FailureCode::ResumeLimitReached,
        FailureCode::InternalError,
    ];

    /// The code as clients see it (the same string serde writes).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::DecompositionFailed => "decomposition_failed",
            FailureCode::SynthesisFailed => "synthesis_failed",
            FailureCode::InsufficientAgents => "insufficient_agents",
            FailureCode::BudgetExceeded => "budget_exceeded",
            FailureCode::SpendLimitReached => "spend_limit_reached",
            FailureCode::DeadlineExceeded => "deadline_exceeded",
            FailureCode::ProviderUnavailable => "provider_unavailable",
            FailureCode::ResumeLimitReached => "resume_limit_reached",
            FailureCode::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_serialises_as_the_string_the_api_documents() {
        let strings: Vec<String> = FailureCode::ALL
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            strings,
            [
                "decomposition_failed",
                "synthesis_failed",
                "insufficient_agents",
                "budget_exceeded",
                "spend_limit_reached",
                "deadline_exceeded",
                "provider_unavailable",
                "resume_limit_reached",
                "internal_error",
            ]
        );
        for c in FailureCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(c.to_string(), c.as_str());
            let back: FailureCode = serde_json::from_value(c.as_str().into()).unwrap();
            assert_eq!(back, c);
        }
    }
}
