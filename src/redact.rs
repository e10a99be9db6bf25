//! The one place that decides what of a configured URL or key may be shown. Everything that prints
//! a configured secret (`Secret`'s Display/Debug, `check-config`, store errors, logs) goes through
//! [`redact_url`]; it depends on nothing else in the crate.

/// Redaction placeholder.
const MASK: &str = "***";

/// Query (or fragment) parameters whose value is a secret, compared case-insensitively with `-`
/// and `_` removed (`api_key`, `API-KEY` and `apikey` are one key).
const SECRET_KEYS: &[&str] = &[
    "pass",
    "pwd",
    "auth",
    "key",
    "sig",
    "signature",
    "credential",
    "credentials",
    "authorization",
    // MongoDB: may carry `AWS_SESSION_TOKEN:...`.
    "authmechanismproperties",
];
/// A key containing one of these is a secret too (`sslpassword`, `tlsCertificateKeyFilePassword`,
/// `access_token`, `X-Amz-Security-Token`, `client_secret`, `secret_key`, `private_key`, ...).
const SECRET_PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "sessionkey",
];

/// `postgres://app:pw@db/x?sslmode=require&password=pw` -> `postgres://app:***@db/x?sslmode=require&password=***`.
///
/// Keeps scheme, user, hosts, path and harmless parameters, so an operator can still tell which
/// server is meant; replaces the password of the user-info and the value of every parameter
/// whose key names a secret. Works on the text, not a parsed URL, so multi-host URLs
/// (`mongodb://u:p@h1,h2/db`) and `mongodb+srv://` are handled too, and nothing else is
/// re-encoded. A value that is not a URL (an API key, a token) becomes `***` entirely.
pub(crate) fn redact_url(raw: &str) -> String {
    if raw.is_empty() {
        return String::new();
    }
    let Some(scheme_end) = raw.find("://") else {
        return MASK.to_string();
    };
    let scheme = &raw[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return MASK.to_string();
    }
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..scheme_end + 3]);
    // The user-info ends at the last '@' (a password may contain an unescaped '@').
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(hosts);
        }
        None => out.push_str(authority),
    }
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_params(query));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(f) = fragment {
        // OAuth implicit flows put `access_token=` in the fragment.
        out.push('#');
        out.push_str(&redact_params(f));
    }
    out
}

/// Whether a query parameter named `key` carries a secret.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let normal: String = percent_decode(key)
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.contains(&normal.as_str()) || SECRET_PARTS.iter().any(|p| normal.contains(p))
}

fn redact_params(params: &str) -> String {
    params
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}={MASK}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes (and `+` as a space) so `pass%77ord` is recognised; invalid escapes stay.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_hidden(raw: &str, secret: &str, kept: &[&str]) {
        let r = redact_url(raw);
        assert!(!r.contains(secret), "{raw} -> {r}");
        for k in kept {
            assert!(r.contains(k), "{raw} -> {r}: lost {k:?}");
        }
    }

    #[test]
    fn userinfo_password_is_masked_user_and_host_kept() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal:5432/tp"),
            "postgres://app:***@db.internal:5432/tp"
        );
        assert_eq!(
            redact_url("redis://:topsecret@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        // An unescaped '@' in the password: the user-info ends at the last one.
        assert_hidden("postgres://app:pa@ss@db/x", "pa@ss", &["@db/x", "app:"]);
        assert_eq!(
            redact_url("postgres://app@db/x"),
            "postgres://app@db/x",
            "nothing to hide"
        );
    }

    #[test]
    fn query_string_secrets_are_masked_whatever_their_case() {
        assert_eq!(
            redact_url("postgres://app@db:5432/trading?password=hunter2"),
            "postgres://app@db:5432/trading?password=***"
        );
        for key in [
            "password",
            "PASSWORD",
            "sslpassword",
            "SslPassword",
            "passwd",
            "pass",
            "pwd",
            "secret",
            "client_secret",
            "token",
            "access_token",
            "api_key",
            "apiKey",
            "API-KEY",
            "access_key",
            "secret_key",
            "auth",
            "pass%77ord",
        ] {
            let raw = format!("postgres://db/x?sslmode=require&{key}=hunter2&application_name=tp");
            assert_hidden(&raw, "hunter2", &["sslmode=require", "application_name=tp"]);
        }
        // Keys that only look alike keep their value: an operator needs them.
        let r = redact_url("mongodb://h/db?authSource=admin&sslkey=/etc/k.pem&keepalives=1");
        assert_eq!(
            r,
            "mongodb://h/db?authSource=admin&sslkey=/etc/k.pem&keepalives=1"
        );
        assert_hidden(
            "https://x.example/cb#access_token=hunter2",
            "hunter2",
            &["x.example/cb#"],
        );
    }

    #[test]
    fn tls_and_srv_and_multi_host_urls() {
        assert_eq!(
            redact_url("rediss://default:hunter2@cache.example.com:6380/0"),
            "rediss://default:***@cache.example.com:6380/0"
        );
        assert_eq!(
            redact_url(
                "mongodb+srv://app:hunter2@cluster0.ab1cd.mongodb.net/news?retryWrites=true&w=majority"
            ),
            "mongodb+srv://app:***@cluster0.ab1cd.mongodb.net/news?retryWrites=true&w=majority"
        );
        assert_eq!(
            redact_url(
                "mongodb://app:s3cr%2Ft@h1:27017,h2:27017/db?replicaSet=rs0&authMechanismProperties=AWS_SESSION_TOKEN:hunter2"
            ),
            "mongodb://app:***@h1:27017,h2:27017/db?replicaSet=rs0&authMechanismProperties=***"
        );
    }

    #[test]
    fn api_keys_and_non_urls_are_masked_entirely() {
        assert_eq!(redact_url("abcdef-api-key"), "***");
        assert_eq!(redact_url("not a url hunter2"), "***");
        assert_eq!(redact_url("host=db password=hunter2"), "***");
        assert_eq!(redact_url(""), "");
        // A news feed whose provider wants the key in the query string.
        assert_eq!(
            redact_url("https://newsapi.example/v2/everything?q=bitcoin&apiKey=hunter2"),
            "https://newsapi.example/v2/everything?q=bitcoin&apiKey=***"
        );
    }
}
