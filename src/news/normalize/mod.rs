//! Builds the normalised `articles` document fields (see the seed's
//! DATABASE_DESIGN.md, MongoDB collection `articles`) from a fetched page.
//!
//! Pure code: the caller supplies the HTML, URL, optional source config and
//! feed-entry metadata, and stamps `crawled_at`/`normalized_at` itself so this
//! module stays deterministic and testable.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::domain::news::SourceSelectors;
use crate::news::extract::{self, Extracted, JsonLd, PageMeta};
use tradepipe_model::aliases::SymbolAliases;

pub mod article; // raw page -> stored article (shared by the actor and the normalize command)

/// Words per minute used for `reading_time_minutes` (a common adult
/// silent-reading rate for non-fiction; Medium uses 265, most news sites 200-250).
pub const WORDS_PER_MINUTE: usize = 200;
/// Maximum excerpt length in characters (the seed says "first 200 characters").
pub const EXCERPT_CHARS: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NormalizeError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("unsupported URL scheme: {0}")]
    UnsupportedScheme(String),
}

/// Metadata from the RSS/Atom entry that led to the page, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub title: Option<String>,
    /// Raw date string (RFC 2822 in RSS, RFC 3339 in Atom).
    pub published: Option<String>,
    pub author: Option<String>,
    pub summary: Option<String>,
    pub categories: Vec<String>,
}

/// Everything known about one fetched page.
#[derive(Debug, Clone, Copy)]
pub struct PageInput<'a> {
    pub html: &'a str,
    /// URL the page was fetched from (after redirects).
    pub url: &'a str,
    pub source_name: Option<&'a str>,
    pub selectors: Option<&'a SourceSelectors>,
    pub feed: Option<&'a FeedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub name: String,
    /// Scheme and host of the article URL.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub name: String,
    pub profile_url: Option<String>,
}

// The image and metadata shapes are the domain's (the stored article uses them as they are).
pub use crate::domain::news::{ArticleImage, ArticleMetadata};

/// The normalised fields of an `articles` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedArticle {
    /// Canonicalised fetch URL (dedup key together with `url_hash`).
    pub url: String,
    pub url_hash: String,
    pub title: String,
    pub body: String,
    pub excerpt: String,
    pub source: Option<SourceRef>,
    pub author: Option<Author>,
    pub published_at: Option<DateTime<Utc>>,
    pub word_count: usize,
    pub reading_time_minutes: usize,
    /// ISO 639-1 code when known, else ISO 639-3.
    pub language: Option<String>,
    pub symbols: Vec<String>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    pub images: Vec<ArticleImage>,
    pub metadata: ArticleMetadata,
}

// ---------------------------------------------------------------------------
// URLs

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
    let mut u =
        Url::parse(raw.trim()).map_err(|e| NormalizeError::InvalidUrl(format!("{raw}: {e}")))?;
    match u.scheme() {
        "http" | "https" => {}
        s => return Err(NormalizeError::UnsupportedScheme(s.to_string())),
    }
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

// ---------------------------------------------------------------------------
// Normalisation

/// Builds the normalised article. Fails only on an unusable URL; every other
/// field degrades to empty/`None`.
pub fn normalize_article(
    input: &PageInput<'_>,
    aliases: &SymbolAliases,
) -> Result<NormalizedArticle, NormalizeError> {
    let canonical = canonicalize_url(input.url)?;
    let base =
        Url::parse(input.url.trim()).map_err(|e| NormalizeError::InvalidUrl(e.to_string()))?;
    let ex: Extracted = match input.selectors {
        Some(s) => extract::extract_with_selectors(input.html, s),
        None => extract::extract_main_text(input.html, Some(input.url)),
    };
    let meta = &ex.meta;
    let ld = &meta.json_ld;
    let feed = input.feed;

    let og_title = meta.get("og:title").map(extract::collapse);
    let og_description = meta.get("og:description").map(extract::collapse);
    let title = ex
        .title
        .clone()
        .or_else(|| og_title.clone())
        .or_else(|| ld.headline.clone())
        .or_else(|| feed.and_then(|f| f.title.as_deref()).map(extract::collapse))
        .unwrap_or_default();
    let body = ex.body.clone();
    let excerpt = if body.trim().is_empty() {
        let alt = og_description
            .clone()
            .or_else(|| {
                feed.and_then(|f| f.summary.as_deref())
                    .map(extract::collapse)
            })
            .unwrap_or_default();
        make_excerpt(&alt, EXCERPT_CHARS)
    } else {
        make_excerpt(&body, EXCERPT_CHARS)
    };
    let word_count = count_words(&body);
    let reading_time_minutes = word_count.div_ceil(WORDS_PER_MINUTE);

    let published_at = published_at(&ex, meta, ld, feed);
    let author = author(&ex, meta, ld, feed, &base);
    let language = detect_language(&body, meta.lang.as_deref());
    let symbols = aliases.find(&format!("{title}\n{body}"));

    let mut tags: Vec<String> = meta.get_all("article:tag").map(str::to_string).collect();
    for k in meta
        .get_all("keywords")
        .chain(meta.get_all("news_keywords"))
    {
        tags.extend(k.split(',').map(str::to_string));
    }
    tags.extend(ld.keywords.iter().cloned());
    let tags = clean_labels(tags, 30);

    let mut cats: Vec<String> = meta
        .get_all("article:section")
        .map(str::to_string)
        .collect();
    cats.extend(ld.sections.iter().cloned());
    if let Some(f) = feed {
        cats.extend(f.categories.iter().cloned());
    }
    let categories = clean_labels(cats, 10);

    let mut images: Vec<ArticleImage> = Vec::new();
    if let Some(og) = meta
        .get("og:image")
        .or_else(|| meta.get("og:image:url"))
        .or_else(|| meta.get("twitter:image"))
        && let Some(u) = resolve(&base, og)
    {
        images.push(ArticleImage {
            url: u,
            alt: meta.get("og:image:alt").map(extract::collapse),
            kind: "featured".to_string(),
        });
    }
    for img in &ex.images {
        if images.len() >= 20 {
            break;
        }
        let Some(u) = resolve(&base, &img.url) else {
            continue;
        };
        if images.iter().any(|i| i.url == u) {
            continue;
        }
        images.push(ArticleImage {
            url: u,
            alt: img.alt.clone(),
            kind: "inline".to_string(),
        });
    }

    let canonical_url = meta
        .canonical
        .as_deref()
        .or_else(|| meta.get("og:url"))
        .and_then(|c| resolve(&base, c))
        .and_then(|c| canonicalize_url(&c).ok());

    let source = input.source_name.map(|name| SourceRef {
        name: name.to_string(),
        url: base.origin().ascii_serialization(),
    });

    Ok(NormalizedArticle {
        url_hash: url_hash(&canonical),
        url: canonical,
        title,
        body,
        excerpt,
        source,
        author,
        published_at,
        word_count,
        reading_time_minutes,
        language,
        symbols,
        tags,
        categories,
        images,
        metadata: ArticleMetadata {
            og_title,
            og_description,
            canonical_url,
        },
    })
}

/// Resolves a possibly relative link; only http(s) results are kept.
fn resolve(base: &Url, link: &str) -> Option<String> {
    let link = link.trim();
    if link.is_empty() || link.starts_with("data:") {
        return None;
    }
    let u = base.join(link).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

/// Lower-cased, trimmed, deduplicated (first occurrence wins), capped.
fn clean_labels(v: Vec<String>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in v {
        let t = extract::collapse(&t).to_lowercase();
        if t.is_empty() || t.chars().count() > 60 || out.contains(&t) {
            continue;
        }
        out.push(t);
        if out.len() >= max {
            break;
        }
    }
    out
}

/// First `max` characters of the text, cut at a word boundary, with an
/// ellipsis when anything was cut.
pub fn make_excerpt(text: &str, max: usize) -> String {
    let flat = extract::collapse(text);
    if flat.chars().count() <= max {
        return flat;
    }
    // Leave room for the ellipsis.
    let limit = max.saturating_sub(1);
    let cut = flat
        .char_indices()
        .nth(limit)
        .map_or(flat.len(), |(i, _)| i);
    let head = &flat[..cut];
    // If the cut fell inside a word, back up to the previous space.
    let head = if flat[cut..].starts_with(' ') {
        head
    } else {
        head.rfind(' ').map_or(head, |sp| &head[..sp])
    };
    let head = head.trim_end_matches(|c: char| c.is_whitespace() || ".,;:-–—".contains(c));
    format!("{head}…")
}

/// Whitespace-separated tokens containing at least one letter or digit.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// Language of the body by statistical detection when reliable, else the
/// page's `<html lang>`; the declared `lang` is often a site-wide default.
pub fn detect_language(body: &str, html_lang: Option<&str>) -> Option<String> {
    let sample: String = body.chars().take(3000).collect();
    if let Some(info) = whatlang::detect(&sample)
        && info.is_reliable()
        && count_words(&sample) >= 5
    {
        return Some(iso639_1(info.lang().code()).to_string());
    }
    html_lang
        .and_then(|l| l.split(['-', '_']).next())
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
}

fn iso639_1(code3: &str) -> &str {
    match code3 {
        "eng" => "en",
        "spa" => "es",
        "fra" => "fr",
        "deu" => "de",
        "ita" => "it",
        "por" => "pt",
        "nld" => "nl",
        "rus" => "ru",
        "ukr" => "uk",
        "pol" => "pl",
        "tur" => "tr",
        "ara" => "ar",
        "cmn" => "zh",
        "jpn" => "ja",
        "kor" => "ko",
        "vie" => "vi",
        "ind" => "id",
        "hin" => "hi",
        "swe" => "sv",
        "dan" => "da",
        "nob" => "no",
        "fin" => "fi",
        "ces" => "cs",
        "ell" => "el",
        "heb" => "he",
        "tha" => "th",
        "ron" => "ro",
        "hun" => "hu",
        "pes" => "fa",
        other => other,
    }
}

// ---------------------------------------------------------------------------
// Dates and authors

/// Publication time, most specific source first: the source's configured
/// selector, then publisher metadata (`article:published_time` and friends,
/// JSON-LD `datePublished`), then the first `<time datetime>` (less reliable:
/// it may belong to a sidebar item), then the feed entry.
fn published_at(
    ex: &Extracted,
    meta: &PageMeta,
    ld: &JsonLd,
    feed: Option<&FeedEntry>,
) -> Option<DateTime<Utc>> {
    let metas = [
        "article:published_time",
        "og:published_time",
        "datepublished",
        "pubdate",
        "publishdate",
        "parsely-pub-date",
        "sailthru.date",
        "dc.date.issued",
        "dc.date",
        "date",
    ];
    ex.published
        .as_deref()
        .and_then(parse_datetime)
        .or_else(|| {
            metas
                .iter()
                .find_map(|k| meta.get(k).and_then(parse_datetime))
        })
        .or_else(|| ld.date_published.as_deref().and_then(parse_datetime))
        .or_else(|| meta.time_datetimes.iter().find_map(|t| parse_datetime(t)))
        .or_else(|| {
            feed.and_then(|f| f.published.as_deref())
                .and_then(parse_datetime)
        })
}

/// Parses the date formats seen in article metadata and feeds into UTC.
/// Values without an offset are taken as UTC; date-only values as midnight UTC.
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S %z",
        "%a, %d %b %Y %H:%M:%S %Z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    // "... GMT"/"... UTC" suffixes that chrono's %Z cannot parse.
    for suffix in [" GMT", " UTC", "Z"] {
        if let Some(rest) = s.strip_suffix(suffix)
            && let Some(d) = [
                "%a, %d %b %Y %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(rest.trim(), f).ok())
        {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    let date_part = s.get(..10).unwrap_or(s);
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, f) {
            return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
        }
    }
    for f in ["%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
        }
    }
    None
}

fn author(
    ex: &Extracted,
    meta: &PageMeta,
    ld: &JsonLd,
    feed: Option<&FeedEntry>,
    base: &Url,
) -> Option<Author> {
    let clean_name = |s: &str| {
        let s = extract::collapse(s);
        let s = s
            .strip_prefix("By ")
            .or_else(|| s.strip_prefix("by "))
            .unwrap_or(&s)
            .trim()
            .to_string();
        (!s.is_empty() && s.chars().count() <= 120).then_some(s)
    };
    if let Some(n) = ex.author.as_deref().and_then(clean_name) {
        return Some(Author {
            name: n,
            profile_url: ld.author_url.as_deref().and_then(|u| resolve(base, u)),
        });
    }
    if let Some(n) = ld.author_name.as_deref().and_then(clean_name) {
        return Some(Author {
            name: n,
            profile_url: ld.author_url.as_deref().and_then(|u| resolve(base, u)),
        });
    }
    // `article:author` is often a profile URL rather than a name.
    let meta_author = meta.get("author").or_else(|| meta.get("article:author"));
    if let Some(a) = meta_author {
        if a.starts_with("http://") || a.starts_with("https://") {
            let name = meta.get("author").filter(|x| !x.starts_with("http"));
            if let Some(n) = name.and_then(clean_name) {
                return Some(Author {
                    name: n,
                    profile_url: Some(a.to_string()),
                });
            }
        } else if let Some(n) = clean_name(a) {
            return Some(Author {
                name: n,
                profile_url: meta
                    .get("article:author")
                    .filter(|u| u.starts_with("http"))
                    .map(str::to_string),
            });
        }
    }
    feed.and_then(|f| f.author.as_deref())
        .and_then(clean_name)
        .map(|name| Author {
            name,
            profile_url: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

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

    #[test]
    fn excerpt_cuts_at_word_boundary() {
        let text = "word ".repeat(100);
        let e = make_excerpt(&text, 200);
        assert!(e.chars().count() <= 200);
        assert!(e.ends_with("word…"), "{e}");
        assert_eq!(make_excerpt("Short  text.\n\nTwo", 200), "Short text. Two");
        let e = make_excerpt(&format!("{} tail", "x".repeat(196)), 200);
        assert_eq!(e, format!("{}…", "x".repeat(196)));
    }

    #[test]
    fn words_and_reading_time() {
        assert_eq!(count_words("Hello, world — it's 2024 !"), 4);
        let body = "w ".repeat(401);
        assert_eq!(count_words(&body).div_ceil(WORDS_PER_MINUTE), 3);
    }

    #[test]
    fn dates_parse_to_utc() {
        let d = parse_datetime("2024-01-15T10:00:00+02:00").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T08:00:00+00:00");
        let d = parse_datetime("Mon, 15 Jan 2024 10:00:00 GMT").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T10:00:00+00:00");
        let d = parse_datetime("Mon, 15 Jan 2024 10:00:00 -0500").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T15:00:00+00:00");
        let d = parse_datetime("2024-01-15T10:00:00.123-0500").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T15:00:00.123+00:00");
        assert_eq!(parse_datetime("2024-01-15").unwrap().day(), 15);
        assert_eq!(
            parse_datetime("2024-01-15 10:00:00").unwrap().to_rfc3339(),
            "2024-01-15T10:00:00+00:00"
        );
        assert_eq!(parse_datetime("November 19, 2019").unwrap().month(), 11);
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_datetime("").is_none());
    }

    #[test]
    fn language_detection_and_fallback() {
        let en = "The central bank raised interest rates again on Tuesday, surprising analysts who expected a pause.";
        assert_eq!(detect_language(en, Some("de")).as_deref(), Some("en"));
        let es = "El banco central volvió a subir los tipos de interés el martes, sorprendiendo a los analistas.";
        assert_eq!(detect_language(es, None).as_deref(), Some("es"));
        assert_eq!(detect_language("", Some("fr-FR")).as_deref(), Some("fr"));
        assert_eq!(detect_language("", Some("??")), None);
    }

    fn synthetic() -> String {
        let p = "Bitcoin climbed above $50,000 on Monday as institutional demand for spot ETFs grew, traders said. ";
        format!(
            r#"<html lang="en"><head><title>T</title>
            <meta property="og:title" content="Bitcoin Surges Past $50,000 - NewsTest"><meta property="og:description" content="OG desc">
            <meta property="og:image" content="/img/lead.jpg"><meta property="article:section" content="Markets">
            <meta property="article:tag" content="Bitcoin"><meta property="article:tag" content="ETF">
            <link rel="canonical" href="https://news.test/a/1?utm_source=rss">
            <script type="application/ld+json">{{"@context":"https://schema.org","@type":"NewsArticle",
              "headline":"LD headline","datePublished":"2024-01-15T08:00:00Z",
              "author":{{"@type":"Person","name":"John Smith","url":"/author/john-smith"}},
              "keywords":"crypto, Bitcoin","articleSection":["Bitcoin"]}}</script></head>
            <body><article><h1>Bitcoin Surges Past $50,000</h1><p>{p}{p}</p>
            <p><img src="/img/chart.png" alt="Bitcoin chart">{p}</p><p>{p}{p}</p></article></body></html>"#
        )
    }

    #[test]
    fn normalizes_synthetic_page() {
        let html = synthetic();
        let feed = FeedEntry {
            published: Some("Tue, 16 Jan 2024 00:00:00 GMT".into()),
            categories: vec!["Crypto".into()],
            ..FeedEntry::default()
        };
        let input = PageInput {
            html: &html,
            url: "https://News.test/a/1?utm_medium=x#top",
            source_name: Some("NewsTest"),
            selectors: None,
            feed: Some(&feed),
        };
        let a = normalize_article(&input, &SymbolAliases::default_crypto()).unwrap();
        assert_eq!(a.url, "https://news.test/a/1");
        assert_eq!(a.url_hash, url_hash("https://news.test/a/1"));
        assert_eq!(a.title, "Bitcoin Surges Past $50,000");
        assert!(a.body.starts_with("Bitcoin climbed"));
        assert!(a.excerpt.chars().count() <= EXCERPT_CHARS && a.excerpt.ends_with('…'));
        // The page's own metadata beats the feed's date.
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-01-15T08:00:00+00:00"
        );
        let author = a.author.unwrap();
        assert_eq!(author.name, "John Smith");
        assert_eq!(
            author.profile_url.as_deref(),
            Some("https://news.test/author/john-smith")
        );
        assert_eq!(a.word_count, 5 * 15, "{}", a.body);
        assert_eq!(a.reading_time_minutes, 1);
        assert_eq!(a.language.as_deref(), Some("en"));
        assert_eq!(a.symbols, vec!["BTCUSDT"]);
        assert_eq!(a.tags, vec!["bitcoin", "etf", "crypto"]);
        assert_eq!(a.categories, vec!["markets", "bitcoin", "crypto"]);
        assert_eq!(a.images.len(), 2);
        assert_eq!(
            (a.images[0].url.as_str(), a.images[0].kind.as_str()),
            ("https://news.test/img/lead.jpg", "featured")
        );
        assert_eq!(a.images[1].alt.as_deref(), Some("Bitcoin chart"));
        assert_eq!(
            a.metadata.og_title.as_deref(),
            Some("Bitcoin Surges Past $50,000 - NewsTest")
        );
        assert_eq!(a.metadata.og_description.as_deref(), Some("OG desc"));
        assert_eq!(
            a.metadata.canonical_url.as_deref(),
            Some("https://news.test/a/1")
        );
        assert_eq!(a.source.unwrap().url, "https://news.test");
    }

    #[test]
    fn feed_fills_gaps_and_bad_url_fails() {
        let feed = FeedEntry {
            title: Some("Feed title".into()),
            published: Some("Tue, 16 Jan 2024 00:00:00 GMT".into()),
            author: Some("By Feed Author".into()),
            ..FeedEntry::default()
        };
        let input = PageInput {
            html: "<html><body></body></html>",
            url: "https://a.test/x",
            source_name: None,
            selectors: None,
            feed: Some(&feed),
        };
        let a = normalize_article(&input, &SymbolAliases::default_crypto()).unwrap();
        assert_eq!(a.title, "Feed title");
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-01-16T00:00:00+00:00"
        );
        assert_eq!(a.author.unwrap().name, "Feed Author");
        assert_eq!(a.word_count, 0);
        assert_eq!(a.reading_time_minutes, 0);
        let bad = PageInput { url: "::", ..input };
        assert!(normalize_article(&bad, &SymbolAliases::new()).is_err());
    }

    /// Loads a page of the development benchmark; `None` (test skipped with a
    /// note) when the shared data folder is not present on this machine.
    fn real_page(id_prefix: &str) -> Option<(String, String)> {
        use std::io::Read;
        let dir = std::env::var("NEWS_EXTRACTION_DATA").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/news/extraction"
            )
            .into()
        });
        let gt: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/ground-truth.dev.json")).ok()?,
        )
        .ok()?;
        let (id, v) = gt
            .as_object()?
            .iter()
            .find(|(k, _)| k.starts_with(id_prefix))?;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(format!("{dir}/html/{id}.html.gz")).ok()?)
            .read_to_string(&mut s)
            .ok()?;
        Some((s, v["url"].as_str()?.to_string()))
    }

    #[test]
    fn real_pages_metadata() {
        let Some((html, url)) = real_page("35b158918c67") else {
            eprintln!("benchmark data not found; skipping");
            return;
        };
        let input = PageInput {
            html: &html,
            url: &url,
            source_name: Some("cleveland.com"),
            selectors: None,
            feed: None,
        };
        let a = normalize_article(&input, &SymbolAliases::default_crypto()).unwrap();
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2019-11-19T11:51:32.556+00:00"
        );
        assert_eq!(
            a.metadata.og_title.as_deref(),
            Some("Doobie Brothers to reunite with Michael McDonald for Blossom show")
        );
        assert!(
            a.metadata
                .og_description
                .as_deref()
                .unwrap()
                .starts_with("The band's 50th anniversary tour")
        );
        assert_eq!(
            a.title,
            "Doobie Brothers to reunite with Michael McDonald for Blossom show"
        );
        assert!(a.body.starts_with("CLEVELAND, Ohio – The Doobie Brothers"));
        assert_eq!(a.language.as_deref(), Some("en"));
        assert_eq!(a.images[0].kind, "featured");
        assert!(a.symbols.is_empty());

        let Some((html, url)) = real_page("4a44ab3e4c41") else {
            return;
        };
        let input = PageInput {
            html: &html,
            url: &url,
            source_name: None,
            selectors: None,
            feed: None,
        };
        let a = normalize_article(&input, &SymbolAliases::default_crypto()).unwrap();
        // From JSON-LD datePublished.
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2019-11-20T05:47:00+00:00"
        );
        assert_eq!(
            a.metadata.canonical_url.as_deref(),
            Some("https://www.rt.com/news/473849-3-morales-supporters-killed-bolivia/")
        );
        assert!(a.body.starts_with("Three people have died"));
    }
}
