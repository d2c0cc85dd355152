//! How results are compressed in Redis. Each stored value starts with a one-byte
//! tag naming its algorithm, so a value written under one `redis.compression`
//! setting still decodes after the setting changes.

use std::io::{Read, Write};

use crate::config::Compression;

const TAG_NONE: u8 = b'N';
const TAG_ZSTD: u8 = b'Z';
const TAG_ZLIB: u8 = b'F';

/// Values larger than this after decompression are refused: a corrupt or hostile
/// value must not exhaust memory.
const MAX_DECODED: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub compression: Compression,
    pub level: i32,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode stored value: {0}")]
pub struct DecodeError(String);

impl Codec {
    pub fn new(compression: Compression, level: i32) -> Codec {
        Codec { compression, level }
    }

    /// Tagged, compressed bytes.
    pub fn encode(&self, raw: &[u8]) -> Vec<u8> {
        let compressed = match self.compression {
            Compression::Zstd => zstd_compress(raw, self.level).map(|c| (TAG_ZSTD, c)),
            Compression::Zlib => {
                let level = flate2::Compression::new(self.level.clamp(0, 9) as u32);
                let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), level);
                enc.write_all(raw)
                    .and_then(|_| enc.finish())
                    .ok()
                    .map(|c| (TAG_ZLIB, c))
            }
            Compression::None => None,
        };
        // Compressing into a Vec cannot fail short of a bad level, which config
        // validation rules out; storing uncompressed is the safe answer anyway.
        let (tag, body) = compressed.unwrap_or((TAG_NONE, raw.to_vec()));
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    /// The original bytes, whatever algorithm wrote them.
    pub fn decode(stored: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let (tag, body) = stored
            .split_first()
            .ok_or_else(|| DecodeError("empty value".into()))?;
        let mut out = Vec::new();
        let read = match *tag {
            TAG_NONE => return Ok(body.to_vec()),
            TAG_ZSTD => zstd::stream::read::Decoder::new(body)
                .and_then(|d| d.take(MAX_DECODED).read_to_end(&mut out)),
            TAG_ZLIB => flate2::read::ZlibDecoder::new(body)
                .take(MAX_DECODED)
                .read_to_end(&mut out),
            t => return Err(DecodeError(format!("unknown compression tag {t:#04x}"))),
        };
        read.map_err(|e| DecodeError(e.to_string()))?;
        Ok(out)
    }
}

thread_local! {
    /// One zstd compression context per thread and level, reused: creating one
    /// allocates and zeroes several hundred KB per packed workflow (visible as
    /// `ZSTD_createCCtx` and allocator zeroing in the writer's profile).
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

fn zstd_compress(raw: &[u8], level: i32) -> Option<Vec<u8>> {
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        slot.as_mut()?.1.compress(raw).ok()
    })
}

/// Uncompressed size over stored size (4.0 = stored in a quarter of the space).
pub fn ratio(raw_len: usize, stored_len: usize) -> f64 {
    raw_len as f64 / stored_len.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Shaped like a research result: repeated keys, prose, Markdown.
        let agents: Vec<_> = (0..8)
            .map(|i| {
                serde_json::json!({
                    "agent_id": format!("agent_{i}"), "agent_type": "research",
                    "subtask": format!("Investigate aspect {i} of distributed consensus"),
                    "content": format!("Findings for aspect {i}: Raft and Paxos both rely on majority quorums; leader election, log replication and safety under partitions are the recurring themes. ").repeat(6),
                    "status": "completed", "model": "simulated",
                    "tokens": {"input": 412, "output": 980, "total": 1392},
                    "cost": 0.0, "execution_time": 0.05, "retries": 0, "queued_time": 0.0, "error": null
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"agent_results": agents})).unwrap()
    }

    #[test]
    fn round_trips_with_every_algorithm_and_compresses_below_half() {
        let raw = sample();
        for (c, level) in [
            (Compression::Zstd, 3),
            (Compression::Zstd, 19),
            (Compression::Zlib, 6),
            (Compression::None, 0),
        ] {
            let codec = Codec::new(c, level);
            let stored = codec.encode(&raw);
            assert_eq!(Codec::decode(&stored).unwrap(), raw, "{c:?}");
            if c != Compression::None {
                assert!(stored.len() * 2 < raw.len(), "{c:?}: {}", stored.len());
            }
        }
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        assert!(Codec::decode(b"").is_err());
        assert!(Codec::decode(b"Zgarbage").is_err());
        assert!(Codec::decode(b"Fgarbage").is_err());
        assert!(Codec::decode(b"Xabc").is_err());
    }
}
