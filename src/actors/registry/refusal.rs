//! Why the registry refuses a request: its own answer, not an HTTP one. The API
//! layer turns it into an `ApiError`, in one place (`api::refusal`).

use crate::auth::KeyLimit;

#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The server is shutting down and admits no new work.
    ShuttingDown,
    /// A store's write queue is full (`setting` bounds it).
    QueueFull {
        store: &'static str,
        setting: &'static str,
        max_queue: usize,
    },
    /// `limits.max_active` workflows are pending or running.
    ActiveLimit {
        active: usize,
        limit: usize,
        retry_after_secs: u64,
    },
    /// The creating key is at one of its limits.
    Key(KeyLimit),
    /// The workflow names a provider that is not configured.
    UnknownProvider(String),
    /// Its provider cannot take work now (the provider's reason).
    ProviderUnavailable(String),
    /// A webhook subscription cap is reached (`setting` names it; `scope` says
    /// whose subscriptions were counted).
    TooManyWebhooks {
        count: usize,
        limit: usize,
        setting: &'static str,
        scope: String,
    },
    /// The workflow finished: it takes no more subscriptions.
    AlreadyFinished { id: String, status: String },
    /// The core refused a workflow the registry just admitted (a bug).
    Internal(&'static str),
}

impl From<KeyLimit> for Refusal {
    fn from(k: KeyLimit) -> Refusal {
        Refusal::Key(k)
    }
}
