//! Connection strings as logs, errors and `check-config` show them: every
//! password replaced by `***`.

/// Query and key=value parameters that carry a password.
const SECRET_PARAMS: &[&str] = &["password", "pass", "passwd"];

fn is_secret_param(key: &str) -> bool {
    SECRET_PARAMS.iter().any(|p| key.eq_ignore_ascii_case(p))
}

/// A connection string with every password replaced by `***`, for logs, errors
/// and `check-config`: the userinfo password and `password=`/`pass=` query
/// parameters of a URL (parsed with the `url` crate), and the `password` of a
/// PostgreSQL key=value string (`host=… password=…`).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let mut changed = false;
            if u.password().is_some() {
                changed |= u.set_password(Some("***")).is_ok();
            }
            if let Some(q) = u.query() {
                let redacted = redact_query(q);
                if redacted != q {
                    u.set_query(Some(&redacted));
                    changed = true;
                }
            }
            if changed {
                u.to_string()
            } else {
                raw.to_string()
            }
        }
        Err(_) if raw.contains("://") => redact_unparsed_url(raw),
        Err(_) => redact_key_values(raw),
    }
}

/// `a=1&password=x` → `a=1&password=***`; other parameters byte for byte.
fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL the `url` crate refuses: the userinfo password and the query by hand.
fn redact_unparsed_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(redact_query(q))),
        None => (rest, None),
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    match query {
        Some(q) => format!("{scheme}://{authority}{tail}?{q}"),
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// libpq's key=value form: `key = value` pairs separated by whitespace, a value
/// either bare or single-quoted with `\'` and `\\` escapes.
fn redact_key_values(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            out.push(c);
            chars.next();
            continue;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        out.push_str(&key);
        while let Some(&c) = chars.peek().filter(|c| c.is_whitespace()) {
            out.push(c);
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        out.push('=');
        chars.next();
        while let Some(&c) = chars.peek().filter(|c| c.is_whitespace()) {
            out.push(c);
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            value.push('\'');
            chars.next();
            while let Some(c) = chars.next() {
                value.push(c);
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    _ => {}
                }
            }
        } else {
            while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace()) {
                value.push(c);
                chars.next();
            }
        }
        out.push_str(if is_secret_param(&key) { "***" } else { &value });
    }
    out
}
