//! Spending limits: a workflow stops (`budget_exceeded`) once its cost or its
//! tokens reach the limit its config or the service default set.

use crate::Workflow;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub usd: Option<f64>,
    pub tokens: Option<u64>,
}

impl Budget {
    pub fn resolve(wf: &Workflow, policy: &super::Policy) -> Budget {
        let opts = wf.config.exec();
        Budget {
            usd: opts
                .budget_usd
                .or((policy.default_budget_usd > 0.0).then_some(policy.default_budget_usd)),
            tokens: opts
                .max_tokens_total
                .or((policy.default_max_tokens_total > 0)
                    .then_some(policy.default_max_tokens_total)),
        }
    }

    /// The reason the workflow must stop for spending, if it must.
    pub fn exceeded(&self, wf: &Workflow) -> Option<String> {
        if let Some(b) = self.usd.filter(|b| wf.total_cost_usd >= *b) {
            return Some(format!(
                "spent ${:.6} of a ${b} budget (config.budget_usd)",
                wf.total_cost_usd
            ));
        }
        if let Some(t) = self.tokens.filter(|t| wf.tokens.total >= *t) {
            return Some(format!(
                "used {} of {t} tokens (config.max_tokens_total)",
                wf.tokens.total
            ));
        }
        None
    }
}
