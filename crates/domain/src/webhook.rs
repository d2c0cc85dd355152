//! Webhook subscriptions and their deliveries: what is sent where, and what came of
//! each attempt. Both are stored in the primary store, so pending deliveries survive
//! a restart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EventType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    /// None: a global subscription, for every workflow's events.
    pub workflow_id: Option<String>,
    pub url: String,
    /// Signs deliveries; stored, never returned by the API after creation.
    pub secret: String,
    /// Event types delivered; empty means all.
    pub events: Vec<EventType>,
    pub created_at: DateTime<Utc>,
    /// The key that registered it (None: auth off), whose share of
    /// `webhooks.max_subscriptions` it counts against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Subscription {
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub subscription_id: String,
    pub workflow_id: String,
    pub url: String,
    pub event: EventType,
    pub event_seq: u64,
    /// The JSON body: `{"event", "task_id", "timestamp", "data"}`.
    pub payload: Value,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Made for a global (admin) subscription: other keys see it without `url`
    /// and `subscription_id`. None in deliveries stored before this was kept,
    /// which other keys see the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<bool>,
    /// The key owning the workflow (None: no key), whose share of
    /// `webhooks.max_pending` the delivery counts against while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}
