//! Config loading, validation and the shipped default file.

use super::*;

const SHIPPED: &str = include_str!("../../config/default.toml");

/// Keys of a TOML document, dotted, leaves only.
fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_table() {
                keys(v, &key, out);
            } else {
                out.push(key);
            }
        }
    }
}

#[test]
fn shipped_default_file_matches_built_in_defaults() {
    let parsed: Config = toml::from_str(SHIPPED).expect("config/default.toml parses");
    assert_eq!(
        parsed,
        Config::default(),
        "config/default.toml differs from Config::default()"
    );
}

#[test]
fn shipped_default_file_lists_and_documents_every_key() {
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let mut want = Vec::new();
    keys(&defaults, "", &mut want);
    let shipped: toml::Value = toml::from_str(SHIPPED).unwrap();
    let mut have = Vec::new();
    keys(&shipped, "", &mut have);
    want.sort();
    have.sort();
    assert_eq!(have, want);
    // Each key line is preceded by a comment line (or is the provider kind).
    let lines: Vec<&str> = SHIPPED.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('[') || l.starts_with("kind") {
            continue;
        }
        assert!(
            lines[i - 1].trim().starts_with('#'),
            "undocumented key: {l}"
        );
    }
}

#[test]
fn redacts_url_passwords() {
    assert_eq!(
        redact_url("redis://user:s3cret@host:6379/2"),
        "redis://user:***@host:6379/2"
    );
    assert_eq!(
        redact_url("postgres://postgres:pw@127.0.0.1/test?sslmode=disable"),
        "postgres://postgres:***@127.0.0.1/test?sslmode=disable"
    );
    assert_eq!(
        redact_url("redis://127.0.0.1:6379"),
        "redis://127.0.0.1:6379"
    );
    assert_eq!(redact_url("rediss://:pw@h"), "rediss://:***@h");
    // An unparseable URL still loses its password.
    assert_eq!(
        redact_url("redis://u:s3cret@[bad/0?x=1&pass=p"),
        "redis://u:***@[bad/0?x=1&pass=***"
    );
    let mut c = Config::default();
    c.redis.url = Some("redis://:hunter2@h:1".into());
    assert!(!c.to_redacted_toml().contains("hunter2"));
}

#[test]
fn redacts_passwords_in_query_strings() {
    assert_eq!(
        redact_url("postgres://u@127.0.0.1:5432/db?sslmode=disable&password=s3cret"),
        "postgres://u@127.0.0.1:5432/db?sslmode=disable&password=***"
    );
    assert_eq!(
        redact_url("redis://127.0.0.1:6379/0?pass=s3cret&protocol=resp3"),
        "redis://127.0.0.1:6379/0?pass=***&protocol=resp3"
    );
    assert_eq!(
        redact_url("postgresql:///db?host=/run/pg&PASSWORD=s3cret"),
        "postgresql:///db?host=/run/pg&PASSWORD=***"
    );
    // A parameter that only contains the word is left alone.
    assert_eq!(
        redact_url("postgres://h/db?passfile=/x"),
        "postgres://h/db?passfile=/x"
    );
}

#[test]
fn redacts_passwords_in_postgres_key_value_strings() {
    assert_eq!(
        redact_url("host=127.0.0.1 user=postgres password=s3cret dbname=test"),
        "host=127.0.0.1 user=postgres password=*** dbname=test"
    );
    assert_eq!(
        redact_url("host=h password = 's3 cret' dbname=d"),
        "host=h password = *** dbname=d"
    );
    assert_eq!(
        redact_url(r"host=h password='s3 \'cret' dbname=d"),
        "host=h password=*** dbname=d"
    );
    assert_eq!(redact_url("password=s3cret"), "password=***");
    assert_eq!(redact_url("host=h dbname=d"), "host=h dbname=d");
}

#[test]
fn validation_names_the_key() {
    let mut c = Config::default();
    c.limits.max_active = 0;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("limits.max_active"));
    let mut c = Config::default();
    c.execution.default_provider = "nope".into();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("execution.default_provider"));
    for url in ["http://host:6379", "redis://:pw@host:notaport", "redis://"] {
        let mut c = Config::default();
        c.redis.url = Some(url.into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("redis.url"), "{url}: {e}");
    }
    let mut c = Config::default();
    c.redis.url = Some("redis://:hunter2@host:notaport".into());
    assert!(!c.validate().unwrap_err().to_string().contains("hunter2"));
    for url in [
        "redis://127.0.0.1:6379",
        "redis://user:pass@host:6380/2",
        "rediss://host:6380",
    ] {
        let mut c = Config::default();
        c.redis.url = Some(url.into());
        assert!(c.validate().is_ok(), "{url}");
    }
    let mut c = Config::default();
    c.redis.compression = Compression::Zlib;
    c.redis.compression_level = 12;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("redis.compression_level"));
    let mut c = Config::default();
    c.server.bind = "not an address".into();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("server.bind"));
}
