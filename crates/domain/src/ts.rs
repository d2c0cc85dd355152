//! Timestamps as JSON, in one piece: the same text chrono's `Serialize` writes
//! (RFC 3339, `Z`, 0, 3, 6 or 9 fractional digits). chrono hands serde_json a
//! `Display` that serde_json escapes character by character; formatted first, the
//! string is escaped once. Events and records carry several timestamps each and
//! are serialised on every commit and SSE frame: this saved 2–6 % of the
//! server's instructions per workflow (BENCHMARKS.md). Reading them back is chrono's own `Deserialize`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "rfc3339")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "rfc3339_opt")]
        o: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chrono {
        t: DateTime<Utc>,
        o: Option<DateTime<Utc>>,
    }

    #[test]
    fn the_text_is_chronos_to_the_byte() {
        let base = Utc.with_ymd_and_hms(2026, 12, 8, 1, 2, 3).unwrap();
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1_000, 7] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            for o in [None, Some(t)] {
                let ours = serde_json::to_string(&Ours { t, o }).unwrap();
                let theirs = serde_json::to_string(&Chrono { t, o }).unwrap();
                assert_eq!(ours, theirs, "{nanos} ns");
            }
        }
    }
}
