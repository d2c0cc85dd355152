//! The workflow record: what the API returns and the stores keep, field for field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FailureCode, Pattern, PatternConfig, Status, TokenUsage, TransitionError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub pattern: Pattern,
    pub task: String,
    pub title: String,
    pub config: PatternConfig,
    pub status: Status,
    #[serde(serialize_with = "crate::ts::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::ts::rfc3339_opt")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::ts::rfc3339_opt")]
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<WorkflowError>,
    pub progress: Progress,
    pub provider: String,
    /// True when the provider is the offline simulator: results are not real.
    pub simulated: bool,
    pub total_cost_usd: f64,
    pub tokens: TokenUsage,
    /// Seconds from start to completion, once terminal.
    pub execution_time: Option<f64>,
    /// How many times the workflow was interrupted (restart) and resumed.
    pub resumes: u32,
    /// How many of its resumed runs died with the process (counted at the next
    /// start); at `execution.max_resumes` it fails instead of resuming again.
    /// Omitted while 0, so records look as they always did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_resumes: u32,
    /// The name of the API key that created it; None when auth was off (or for
    /// records from before keys existed: only admin keys see those).
    #[serde(default)]
    pub owner: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowError {
    pub code: FailureCode,
    pub message: String,
}

impl WorkflowError {
    pub fn new(code: FailureCode, message: impl Into<String>) -> WorkflowError {
        WorkflowError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Queued,
    Decomposing,
    Agents,
    Synthesis,
    Documents,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub completed_agents: u32,
    pub total_agents: u32,
    pub percent: f64,
}

impl Progress {
    /// Percent weighs stages by the calls they make: agents dominate.
    pub fn recompute(&mut self) {
        let agents = if self.total_agents == 0 {
            0.0
        } else {
            f64::from(self.completed_agents) / f64::from(self.total_agents)
        };
        let pct = match self.stage {
            Stage::Queued => 0.0,
            Stage::Decomposing => 5.0,
            Stage::Agents => 10.0 + 70.0 * agents,
            Stage::Synthesis => 85.0,
            Stage::Documents => 95.0,
            Stage::Done => 100.0,
        };
        self.percent = (pct * 10.0).round() / 10.0;
    }
}

impl Workflow {
    /// A record not yet created: `created_at` is the Unix epoch until
    /// `Input::Create` stamps it with the `now` the core is given (the domain
    /// reads no clock).
    pub fn new(
        id: String,
        pattern: Pattern,
        task: String,
        title: String,
        config: PatternConfig,
        provider: String,
        simulated: bool,
    ) -> Workflow {
        let total_agents = config.total_agents();
        Workflow {
            id,
            pattern,
            task,
            title,
            config,
            status: Status::Pending,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            started_at: None,
            completed_at: None,
            error: None,
            progress: Progress {
                stage: Stage::Queued,
                completed_agents: 0,
                total_agents,
                percent: 0.0,
            },
            provider,
            simulated,
            total_cost_usd: 0.0,
            tokens: TokenUsage::default(),
            execution_time: None,
            resumes: 0,
            failed_resumes: 0,
            owner: None,
        }
    }

    /// Applies a status transition with its timestamps; illegal moves are errors
    /// and leave the workflow untouched.
    pub fn transition(&mut self, to: Status, at: DateTime<Utc>) -> Result<(), TransitionError> {
        self.status.check(to)?;
        self.status = to;
        match to {
            Status::Running if self.started_at.is_none() => self.started_at = Some(at),
            Status::Running => self.resumes += 1,
            _ => {}
        }
        if to.is_terminal() {
            self.completed_at = Some(at);
            let start = self.started_at.unwrap_or(self.created_at);
            self.execution_time = Some((at - start).num_microseconds().unwrap_or(0) as f64 / 1e6);
            if to == Status::Completed {
                self.progress.stage = Stage::Done;
                self.progress.recompute();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed instant: the domain's tests, like the domain, read no clock.
    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(20_000)
    }

    fn wf() -> Workflow {
        Workflow::new(
            "wf_1".into(),
            Pattern::Research,
            "t".into(),
            "t".into(),
            PatternConfig::default_for(Pattern::Research),
            "simulated".into(),
            true,
        )
    }

    #[test]
    fn completed_at_is_set_once_on_terminal() {
        let mut w = wf();
        let t1 = t0();
        w.transition(Status::Running, t1).unwrap();
        assert_eq!(w.started_at, Some(t1));
        assert_eq!(w.completed_at, None);
        let t2 = t1 + chrono::Duration::milliseconds(1500);
        w.transition(Status::Completed, t2).unwrap();
        assert_eq!(w.completed_at, Some(t2));
        assert_eq!(w.execution_time, Some(1.5));
        let t3 = t2 + chrono::Duration::seconds(1);
        assert!(w.transition(Status::Failed, t3).is_err());
        assert_eq!(w.completed_at, Some(t2));
        assert_eq!(w.status, Status::Completed);
    }

    #[test]
    fn resume_keeps_started_at_and_counts() {
        let mut w = wf();
        let t = t0();
        w.transition(Status::Running, t).unwrap();
        w.transition(Status::Interrupted, t).unwrap();
        w.transition(Status::Running, t + chrono::Duration::seconds(5))
            .unwrap();
        assert_eq!(w.started_at, Some(t));
        assert_eq!(w.resumes, 1);
    }

    #[test]
    fn illegal_transition_leaves_record_untouched() {
        let mut w = wf();
        let before = w.clone();
        assert!(w.transition(Status::Completed, t0()).is_err());
        assert_eq!(w, before);
    }
}
