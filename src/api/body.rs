//! Reading JSON bodies with the error envelope: a size limit
//! (`server.max_body_bytes`, 413), a time limit (`server.client_request_timeout`,
//! 408: a client trickling its body holds a connection no longer), syntax errors
//! (400 invalid_json) and type/unknown-field errors that name the field (400).

use actix_web::web;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::config::ServerConfig;
use crate::error::ApiError;

pub async fn read_json<T: DeserializeOwned>(
    payload: web::Payload,
    server: &ServerConfig,
    declared_len: Option<usize>,
) -> Result<T, ApiError> {
    parse_json(&read_body(payload, server, declared_len).await?)
}

/// The raw body within the size and time limits (for handlers that also hash it).
pub async fn read_body(
    payload: web::Payload,
    server: &ServerConfig,
    declared_len: Option<usize>,
) -> Result<web::BytesMut, ApiError> {
    let limit = server.max_body_bytes;
    if let Some(len) = declared_len.filter(|l| *l > limit) {
        return Err(ApiError::PayloadTooLarge { size: len, limit });
    }
    let wait = server.client_request_timeout;
    tokio::time::timeout(wait, read_bounded(payload, limit))
        .await
        .map_err(|_| ApiError::RequestTimeout(wait))?
}

async fn read_bounded(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge {
                size: body.len() + chunk.len(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::InvalidJson(inner.to_string());
        }
        let path = e.path().to_string();
        let msg = inner.to_string();
        ApiError::validation(field_name(&path, &msg), msg)
    })
}

/// serde reports an unknown field with the parent's path; name the field itself.
pub(crate) fn field_name(path: &str, msg: &str) -> String {
    let base = if path == "." { "" } else { path };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(name) = rest.split('`').next() {
            return if base.is_empty() {
                name.to_string()
            } else if base == name || base.ends_with(&format!(".{name}")) {
                base.to_string()
            } else {
                format!("{base}.{name}")
            };
        }
    }
    if base.is_empty() {
        "body".into()
    } else {
        base.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        a: Option<String>,
        inner: Option<Inner>,
    }

    fn field(body: &str) -> String {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_fields() {
        assert_eq!(field(r#"{"b": 1}"#), "b");
        assert_eq!(field(r#"{"a": 5}"#), "a");
        assert_eq!(field(r#"{"inner": {"n": "x"}}"#), "inner.n");
        assert_eq!(field(r#"{"inner": {"m": 1}}"#), "inner.m");
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        assert!(matches!(
            parse_json::<Outer>(b"{\"a\":"),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_json::<Outer>(b"  "),
            Err(ApiError::InvalidJson(_))
        ));
    }
}
