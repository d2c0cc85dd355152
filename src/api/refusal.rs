//! The registry's refusals as API errors: the one place a `Refusal` (an actor's
//! answer) becomes an `ApiError` (an HTTP answer).

use crate::actors::registry::Refusal;
use crate::auth::KeyLimit;
use crate::error::{ApiError, CompatError};

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::ShuttingDown => ApiError::ShuttingDown,
            Refusal::QueueFull {
                store,
                setting,
                max_queue,
            } => ApiError::StoreUnavailable(format!(
                "the {store} write queue is full ({setting} = {max_queue}); retry shortly"
            )),
            Refusal::ActiveLimit {
                active,
                limit,
                retry_after_secs,
            } => ApiError::ActiveLimitReached {
                active,
                limit,
                retry_after_secs,
            },
            Refusal::Key(KeyLimit::Active {
                key,
                active,
                limit,
                retry_after_secs,
            }) => ApiError::QuotaExceeded {
                key,
                active,
                limit,
                retry_after_secs,
            },
            Refusal::Key(KeyLimit::Spend {
                key,
                spent,
                limit,
                retry_after_secs,
            }) => ApiError::SpendLimitReached {
                key,
                spent,
                limit,
                retry_after_secs,
            },
            Refusal::UnknownProvider(name) => ApiError::validation(
                "config.provider",
                format!("provider '{name}' is not configured"),
            ),
            Refusal::ProviderUnavailable(reason) => ApiError::ProviderUnavailable(reason),
            Refusal::TooManyWebhooks {
                count,
                limit,
                setting,
                scope,
            } => ApiError::TooManyWebhooks {
                count,
                limit,
                key: setting,
                scope,
            },
            Refusal::AlreadyFinished { id, status } => ApiError::AlreadyFinished { id, status },
            Refusal::Internal(what) => ApiError::Internal(what.into()),
        }
    }
}

/// The old routes answer a refusal in their own shape, with the same code.
impl From<Refusal> for CompatError {
    fn from(r: Refusal) -> CompatError {
        CompatError(r.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_refusals_metric_reason_is_its_api_code() {
        let limits = [
            KeyLimit::Active {
                key: "k".into(),
                active: 2,
                limit: 2,
                retry_after_secs: 5,
            },
            KeyLimit::Spend {
                key: "k".into(),
                spent: 1.5,
                limit: 1.0,
                retry_after_secs: 60,
            },
        ];
        for k in limits {
            let reason = k.reason();
            assert_eq!(ApiError::from(Refusal::Key(k)).code(), reason);
        }
    }

    #[test]
    fn refusals_keep_their_wire_messages() {
        let full = Refusal::QueueFull {
            store: "sqlite",
            setting: "storage.max_queue",
            max_queue: 10,
        };
        let e = ApiError::from(full);
        assert_eq!(e.code(), "store_unavailable");
        assert_eq!(
            e.to_string(),
            "the store did not acknowledge the write: the sqlite write queue is full (storage.max_queue = 10); retry shortly"
        );
        let e = ApiError::from(Refusal::UnknownProvider("p".into()));
        assert_eq!(e.code(), "validation_error");
        assert_eq!(e.body()["error"]["field"], "config.provider");
        assert_eq!(e.to_string(), "provider 'p' is not configured");
        let e = ApiError::from(Refusal::TooManyWebhooks {
            count: 3,
            limit: 3,
            setting: "webhooks.max_subscriptions",
            scope: "in total".into(),
        });
        assert_eq!(e.code(), "too_many_webhooks");
        assert_eq!(
            e.to_string(),
            "3 webhook subscriptions exist in total, the limit (webhooks.max_subscriptions) is 3; delete one first"
        );
    }
}
