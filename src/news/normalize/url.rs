//! The dedup key of a page: its canonical URL (tracking parameters, fragment and default port
//! dropped, query sorted) and `url_hash`, the SHA-256 of it. The crawler keys raw pages by it.

use super::NormalizeError;
use sha2::{Digest, Sha256};
use url::Url;

/// Query parameters that only track campaigns/clicks and never select content.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "msclkid",
    "yclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "wickedid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "s_cid",
    "cmpid",
    "ocid",
    "ncid",
    "sr_share",
];

fn is_tracking_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_") || TRACKING_PARAMS.contains(&k.as_str())
}

/// Canonical form used for dedup: fragment, tracking parameters and default
/// ports dropped, host lower-cased, remaining query parameters sorted (by key,
/// then value) so that parameter order does not create duplicates.
pub fn canonicalize_url(raw: &str) -> Result<String, NormalizeError> {
    let mut u = parse_http_url(raw)?;
    u.set_fragment(None);
    // The url crate already lower-cases hosts and drops default ports for
    // http(s); this is kept explicit for clarity should the parser change.
    if let Some(host) = u.host_str().map(str::to_ascii_lowercase) {
        u.set_host(Some(&host))
            .map_err(|e| NormalizeError::InvalidUrl(e.to_string()))?;
    }
    let mut params: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    if params.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(params);
    }
    Ok(u.to_string())
}

/// SHA-256 of the canonical URL, lower-case hex (the `url_hash` unique key).
pub fn url_hash(canonical: &str) -> String {
    let digest = Sha256::digest(canonical.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses an http(s) URL; any other scheme or an unparsable text is an error naming it.
pub(super) fn parse_http_url(raw: &str) -> Result<Url, NormalizeError> {
    let u =
        Url::parse(raw.trim()).map_err(|e| NormalizeError::InvalidUrl(format!("{raw}: {e}")))?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        s => Err(NormalizeError::UnsupportedScheme(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalize_drops_tracking_fragment_port_and_sorts() {
        let c = canonicalize_url(
            "HTTPS://WWW.Example.COM:443/News/Story?utm_source=x&b=2&fbclid=abc&a=1&UTM_Medium=y&gclid=z#comments",
        )
        .unwrap();
        assert_eq!(c, "https://www.example.com/News/Story?a=1&b=2");
        assert_eq!(
            canonicalize_url("http://a.test:80/x?utm_campaign=1").unwrap(),
            "http://a.test/x"
        );
        assert_eq!(
            canonicalize_url("http://a.test:8080/").unwrap(),
            "http://a.test:8080/"
        );
        // Same article, different parameter order: same key.
        assert_eq!(
            canonicalize_url("https://a.test/p?id=5&page=2").unwrap(),
            canonicalize_url("https://a.test/p?page=2&id=5").unwrap()
        );
    }

    #[test]
    fn canonicalize_rejects_garbage() {
        assert!(matches!(
            canonicalize_url("not a url"),
            Err(NormalizeError::InvalidUrl(_))
        ));
        assert!(matches!(
            canonicalize_url("ftp://a.test/x"),
            Err(NormalizeError::UnsupportedScheme(_))
        ));
    }

    #[test]
    fn url_hash_is_sha256_hex() {
        assert_eq!(
            url_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(url_hash("https://a.test/").len(), 64);
    }
}
