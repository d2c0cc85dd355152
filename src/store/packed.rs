//! The packed form of a finished workflow's bulky rows, shared by both stores:
//! its result and its whole event log in one zstd frame (the Redis mirror's
//! tagged codec). Agent, synthesis and subtask texts appear in the events and
//! again in the result and its report; in one frame each repeat costs a few bytes
//! of back-reference instead of a second copy, and the 26 event rows of a
//! research workflow become none. Per-model call counts and costs, which the
//! analytics read, stay outside the frame in the `model_costs` table.
//!
//! Wire (inside the frame): `{"result": WorkflowResult | null,
//! "events": [[seq, type, ts_us, data], …]}`, events in seq order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::DateTime;
use serde::Deserialize;

use super::codec::Codec;
use super::StoreError;
use crate::config::Compression;
use crate::domain::{Event, EventType, WorkflowResult};

/// zstd level: 1 packs a research workflow within 5% of level 3's size at about
/// half the CPU, and the writer's thread is what bounds throughput.
pub const LEVEL: i32 = 1;

/// One event as a packed JSON array; `data` is already JSON text (as stored).
pub struct RawEvent {
    pub seq: u64,
    pub kind: String,
    pub ts_us: i64,
    pub data: String,
}

impl RawEvent {
    pub fn of(ev: &Event) -> RawEvent {
        RawEvent {
            seq: ev.seq,
            kind: ev.kind.as_str().to_string(),
            ts_us: ev.timestamp.timestamp_micros(),
            data: ev.data_json().to_owned(),
        }
    }
}

/// What a stored results value decodes to.
#[derive(Debug, Default, Deserialize)]
pub struct Packed {
    pub result: Option<WorkflowResult>,
    #[serde(default)]
    events: Vec<(u64, EventType, i64, serde_json::Value)>,
}

impl Packed {
    pub fn decode(what: &str, stored: &[u8]) -> Result<Packed, StoreError> {
        let raw = Codec::decode(stored).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
    }

    /// The packed events with seq above `after`, as `Event`s of `workflow_id`.
    pub fn events_after(&self, workflow_id: &str, after: u64) -> Result<Vec<Event>, StoreError> {
        self.events
            .iter()
            .filter(|e| e.0 > after)
            .map(|(seq, kind, ts, data)| {
                Ok(Event {
                    workflow_id: workflow_id.to_string(),
                    seq: *seq,
                    kind: *kind,
                    timestamp: DateTime::from_timestamp_micros(*ts)
                        .ok_or_else(|| StoreError::Corrupt(format!("event timestamp {ts}")))?,
                    data: data.clone().into(),
                })
            })
            .collect()
    }

    /// The packed events back in raw form, to merge with more before repacking.
    pub fn into_raw(self) -> (Option<WorkflowResult>, Vec<RawEvent>) {
        let events = self
            .events
            .into_iter()
            .map(|(seq, kind, ts_us, data)| RawEvent {
                seq,
                kind: kind.as_str().to_string(),
                ts_us,
                data: data.to_string(),
            })
            .collect();
        (self.result, events)
    }
}

/// Packs `result_json` (or null) and `events` (any order; a seq seen twice is
/// kept once) into one tagged zstd frame.
pub fn encode(result_json: Option<&str>, events: Vec<RawEvent>) -> Vec<u8> {
    let mut by_seq: BTreeMap<u64, RawEvent> = BTreeMap::new();
    for e in events {
        by_seq.entry(e.seq).or_insert(e);
    }
    let size: usize = by_seq.values().map(|e| e.data.len() + 48).sum();
    let mut json = String::with_capacity(size + result_json.map_or(4, str::len) + 32);
    json.push_str("{\"result\":");
    json.push_str(result_json.unwrap_or("null"));
    json.push_str(",\"events\":[");
    for (i, e) in by_seq.values().enumerate() {
        if i > 0 {
            json.push(',');
        }
        // Types are snake_case identifiers and data is JSON written by the store
        // itself, so plain concatenation stays valid JSON.
        let _ = write!(json, "[{},\"{}\",{},", e.seq, e.kind, e.ts_us);
        json.push_str(&e.data);
        json.push(']');
    }
    json.push_str("]}");
    Codec::new(Compression::Zstd, LEVEL).encode(json.as_bytes())
}

/// Calls and cost per model over a result's agents and syntheses, in order of
/// first use: the `model_costs` rows the analytics sum. Tool calls' per-call
/// prices are rows of their own, `tool:<server>` (configured names only), and
/// not counted in the agent's model.
pub fn model_costs(r: &WorkflowResult) -> Vec<(String, u64, f64)> {
    let mut rows: Vec<(String, u64, f64)> = Vec::new();
    let mut add =
        |model: String, n: u64, cost: f64| match rows.iter_mut().find(|(m, _, _)| *m == model) {
            Some(row) => {
                row.1 += n;
                row.2 += cost;
            }
            None => rows.push((model, n, cost)),
        };
    for a in &r.agent_results {
        let tools: f64 = a.tool_usage.iter().map(|u| u.cost).sum();
        add(a.model.clone(), 1, a.cost - tools);
        for u in &a.tool_usage {
            add(format!("tool:{}", u.server), u64::from(u.calls), u.cost);
        }
    }
    for s in &r.synthesis_results {
        add(s.model.clone(), 1, s.cost);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Pattern, SynthesisResult, TokenUsage};

    #[test]
    fn round_trips_result_and_events_and_drops_duplicate_seqs() {
        let mut r = WorkflowResult::empty("wf_1", Pattern::Research, true);
        r.final_synthesis = Some("text \"quoted\" \u{e9}".into());
        let ev = |seq: u64| RawEvent {
            seq,
            kind: "agent_started".into(),
            ts_us: 1_700_000_000_000_000 + seq as i64,
            data: format!("{{\"n\":{seq},\"s\":\"x\\ny\"}}"),
        };
        let json = serde_json::to_string(&r).unwrap();
        let stored = encode(Some(&json), vec![ev(3), ev(1), ev(2), ev(1)]);
        let p = Packed::decode("t", &stored).unwrap();
        assert_eq!(p.result.as_ref(), Some(&r));
        let events = p.events_after("wf_1", 1).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(events[0].data["s"], "x\ny");
        assert_eq!(
            events[0].timestamp.timestamp_micros(),
            1_700_000_000_000_002
        );
        assert_eq!(events[0].kind, EventType::AgentStarted);
    }

    #[test]
    fn corrupt_values_are_errors() {
        assert!(Packed::decode("t", b"Zjunk").is_err());
        assert!(Packed::decode("t", b"N{\"events\":7}").is_err());
    }

    #[test]
    fn model_costs_count_agents_and_syntheses_per_model() {
        let mut r = WorkflowResult::empty("wf_1", Pattern::Research, false);
        let synth = |model: &str, cost: f64| SynthesisResult {
            level: "final".into(),
            group: None,
            sources: vec![],
            content: String::new(),
            model: model.into(),
            tokens: TokenUsage::default(),
            cost,
            execution_time: 0.0,
            retries: 0,
            step_key: None,
        };
        r.synthesis_results = vec![synth("a", 0.5), synth("b", 1.0), synth("a", 0.25)];
        assert_eq!(
            model_costs(&r),
            [("a".to_string(), 2, 0.75), ("b".to_string(), 1, 1.0)]
        );
    }

    #[test]
    fn tool_prices_are_rows_of_their_own() {
        let mut r = WorkflowResult::empty("wf_1", Pattern::Search, false);
        let agent: crate::domain::AgentResult = serde_json::from_value(serde_json::json!({
            "agent_id": "news_agent_01", "agent_type": "news", "subtask": "", "content": "",
            "status": "completed", "model": "m", "tokens": {"input": 0, "output": 0, "total": 0},
            "cost": 1.5, "execution_time": 0.0, "error": null,
            "tool_usage": [{"server": "web", "calls": 2, "cost": 0.5}]
        }))
        .unwrap();
        r.agent_results = vec![agent.clone(), agent];
        assert_eq!(
            model_costs(&r),
            [("m".to_string(), 2, 2.0), ("tool:web".to_string(), 4, 1.0)]
        );
    }
}
