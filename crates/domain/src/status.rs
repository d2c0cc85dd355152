//! The workflow status state machine. Terminal states never change; `completed_at`
//! is set exactly once, when a terminal state is entered.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Running,
    /// Was running when the process stopped; resumed at the next start.
    Interrupted,
    Completed,
    Failed,
    Cancelled,
}

pub const ALL_STATUSES: [Status; 6] = [
    Status::Pending,
    Status::Running,
    Status::Interrupted,
    Status::Completed,
    Status::Failed,
    Status::Cancelled,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {from} -> {to}")]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        ALL_STATUSES.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }

    /// Counts against `limits.max_active`.
    pub fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// The legal moves, and nothing else.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Running)
                | (Pending, Cancelled)
                | (Pending, Failed)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Running, Interrupted)
                | (Interrupted, Running)
                | (Interrupted, Cancelled)
                | (Interrupted, Failed)
        )
    }

    pub fn check(self, to: Status) -> Result<(), TransitionError> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const LEGAL: [(Status, Status); 10] = [
        (Pending, Running),
        (Pending, Cancelled),
        (Pending, Failed),
        (Running, Completed),
        (Running, Failed),
        (Running, Cancelled),
        (Running, Interrupted),
        (Interrupted, Running),
        (Interrupted, Cancelled),
        (Interrupted, Failed),
    ];

    #[test]
    fn every_legal_transition_is_allowed() {
        for (from, to) in LEGAL {
            assert!(from.check(to).is_ok(), "{from} -> {to} should be legal");
        }
    }

    #[test]
    fn every_other_transition_is_refused() {
        let mut refused = 0;
        for from in ALL_STATUSES {
            for to in ALL_STATUSES {
                if LEGAL.contains(&(from, to)) {
                    continue;
                }
                assert_eq!(from.check(to), Err(TransitionError { from, to }));
                refused += 1;
            }
        }
        // 36 pairs, 10 legal.
        assert_eq!(refused, 26);
    }

    #[test]
    fn terminal_states_never_change() {
        for from in [Completed, Failed, Cancelled] {
            assert!(from.is_terminal());
            for to in ALL_STATUSES {
                assert!(!from.can_become(to), "{from} must not become {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATUSES {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(Status::parse("done"), None);
    }
}
