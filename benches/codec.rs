//! Result compression for Redis: encode and decode of a typical research result
//! (8 agents, 2 group syntheses, a final synthesis, a Markdown report) with each
//! algorithm. Prints the achieved ratio once per algorithm.

use criterion::{criterion_group, criterion_main, Criterion};
use mcp_orchestrator::config::Compression;
use mcp_orchestrator::domain::{
    AgentResult, AgentStatus, Document, Pattern, Status, SynthesisResult, TokenUsage,
    WorkflowResult,
};
use mcp_orchestrator::store::codec::{ratio, Codec};

/// Text with the word statistics of prose (a deterministic pseudo-random walk over
/// a vocabulary), so compression ratios resemble real LLM output, not repetition.
fn prose(topic: &str, sentences: usize) -> String {
    const WORDS: &str = "the a of and to in is that for on with as by this are be it from \
        at or an which can has its their quorum leader election log replication term commit \
        entry follower candidate majority partition network latency throughput consistency \
        availability linearizable snapshot isolation transaction clock skew heartbeat timeout \
        membership change joint configuration safety liveness proof invariant state machine \
        client request response retry idempotent batch pipeline storage durable write ahead \
        recovery crash failure detector gossip vector lamport hybrid timestamp shard range \
        rebalance split merge lease read index witness learner observer region zone datacenter \
        benchmark workload contention conflict abort serializable anomaly phantom skew lost \
        update dirty read repeatable optimistic pessimistic lock two phase three paxos raft \
        viewstamped zab epaxos flexible byzantine tolerant signature certificate";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut x: u64 = topic.bytes().fold(1469598103934665603, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    });
    let mut out = String::new();
    for _ in 0..sentences {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 12 + (x >> 60) as usize;
        for w in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let word = words[(x >> 33) as usize % words.len()];
            if w == 0 {
                out.push_str(&word[..1].to_uppercase());
                out.push_str(&word[1..]);
            } else {
                out.push(' ');
                out.push_str(word);
            }
        }
        out.push_str(". ");
    }
    out
}

fn typical_result() -> Vec<u8> {
    let agents: Vec<AgentResult> = (0..8)
        .map(|i| AgentResult {
            agent_id: format!("agent_{i}"),
            agent_type: "research".into(),
            subtask: format!("Aspect {i} of consensus in distributed databases"),
            content: prose(&format!("aspect {i}"), 12),
            status: AgentStatus::Completed,
            model: "gpt-4o-mini".into(),
            tokens: TokenUsage::new(420 + i, 950 + i),
            cost: 0.00063,
            execution_time: 4.2,
            retries: 0,
            queued_time: 0.0,
            error: None,
            step_key: Some(format!(
                "wf_01a2157f06e976248cda8c293e8f4e7a/agent/{}",
                i + 1
            )),
            tools_used: Vec::new(),
            sources: Vec::new(),
            tool_usage: Vec::new(),
        })
        .collect();
    let synth = |level: &str, group: Option<u32>| SynthesisResult {
        level: level.into(),
        group,
        sources: (0..4).map(|i| format!("agent_{i}")).collect(),
        content: prose("synthesis", 10),
        model: "gpt-4o".into(),
        tokens: TokenUsage::new(3000, 1200),
        cost: 0.02,
        execution_time: 9.1,
        retries: 0,
        step_key: None,
    };
    let r = WorkflowResult {
        workflow_id: "wf_01a2157f06e976248cda8c293e8f4e7a".into(),
        pattern: Pattern::Research,
        status: Status::Completed,
        simulated: false,
        subtasks: (0..8).map(|i| format!("Aspect {i} of consensus")).collect(),
        decomposition: None,
        agent_results: agents,
        synthesis_results: vec![
            synth("group", Some(1)),
            synth("group", Some(2)),
            synth("final", None),
        ],
        final_synthesis: Some(prose("final", 15)),
        documents: vec![Document {
            name: "report.md".into(),
            format: "markdown".into(),
            content: format!("# Report\n\n## Summary\n\n{}", prose("report", 25)),
            bytes: 0,
            sha256: String::new(),
            error: None,
        }],
        execution_time: 42.0,
        total_cost: 0.065,
        tokens: TokenUsage::new(12000, 9000),
        sources: Vec::new(),
    };
    serde_json::to_vec(&r).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let raw = typical_result();
    let mut g = c.benchmark_group("result_codec");
    for (name, comp, level) in [
        ("zstd3", Compression::Zstd, 3),
        ("zlib6", Compression::Zlib, 6),
        ("none", Compression::None, 0),
    ] {
        let codec = Codec::new(comp, level);
        let stored = codec.encode(&raw);
        println!(
            "{name}: {} bytes JSON -> {} stored, ratio {:.2}",
            raw.len(),
            stored.len(),
            ratio(raw.len(), stored.len())
        );
        g.bench_function(format!("encode_{name}"), |b| b.iter(|| codec.encode(&raw)));
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| Codec::decode(&stored).map(|v| v.len()).unwrap_or(0))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
