//! From a stored raw page to the stored article: extraction, then every field of the seed's
//! `articles` document with its fallbacks (page metadata, JSON-LD, the feed entry, the source).
//! The one code path of the NormalizerActor and `tradepipe normalize`; pure, the caller gives the clock.

use super::NormalizeError;
use super::dates::published_at;
use super::language::detect_language;
use super::url::{canonicalize_url, parse_http_url};
use crate::domain::news::{
    ArticleAuthor, ArticleImage, ArticleMetadata, ArticleSource, FeedEntryMeta,
};
use crate::domain::{Article, NewsSource, ProcessingStatus, RawArticle};
use crate::news::crawl::decode::check_text;
use crate::news::extract::{self, Extracted, JsonLd, PageMeta};
use chrono::{DateTime, Utc};
use tradepipe_model::aliases::SymbolAliases;
use url::Url;

/// Words per minute used for `reading_time_minutes` (a common adult
/// silent-reading rate for non-fiction; Medium uses 265, most news sites 200-250).
pub const WORDS_PER_MINUTE: usize = 200;
/// Maximum excerpt length in characters (the seed says "first 200 characters").
pub const EXCERPT_CHARS: usize = 200;

/// Normalizes one raw page. `source`, when known, gives the selectors, the article's source
/// (id, name, URL) and categories added to the page's own. Fails only on an unusable URL; every
/// other field degrades to empty or `None`.
pub fn build_article(
    raw: &RawArticle,
    source: Option<&NewsSource>,
    aliases: &SymbolAliases,
    now: DateTime<Utc>,
) -> Result<Article, NormalizeError> {
    // The crawler refuses binary bodies when it decodes them; a page stored before that (or by
    // other means) is refused here, so it ends FAILED with the reason instead of as an article.
    check_text(&raw.raw_html, "as stored")?;
    let base = parse_http_url(&raw.url)?;
    let ex: Extracted = match source {
        Some(s) => extract::extract_with_selectors(&raw.raw_html, &s.selectors),
        None => extract::extract_main_text(&raw.raw_html, Some(&raw.url)),
    };
    let meta = &ex.meta;
    let ld = &meta.json_ld;
    let feed = raw.feed_entry.as_ref();

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
    let author = author(&ex, meta, ld, feed, &base).unwrap_or_default();
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

    let source_ref = match source {
        Some(s) => ArticleSource {
            id: s.name.clone(),
            name: s.name.clone(),
            url: s.base_url.clone(),
        },
        None if !raw.source_name.is_empty() => ArticleSource {
            id: raw.source_name.clone(),
            name: raw.source_name.clone(),
            url: base.origin().ascii_serialization(),
        },
        None => ArticleSource::default(),
    };
    let mut categories = categories;
    if let Some(s) = source {
        for c in &s.metadata.categories {
            if !categories.contains(c) {
                categories.push(c.clone());
            }
        }
    }

    Ok(Article {
        id: String::new(),
        raw_article_id: raw.id.clone(),
        // The raw article's URL is already canonical and its hash is the dedup key the crawler
        // used; keep both identical so the two records always join.
        url: raw.url.clone(),
        url_hash: raw.url_hash.clone(),
        title,
        body,
        excerpt,
        source: source_ref,
        author,
        published_at,
        crawled_at: raw.crawled_at,
        normalized_at: now,
        word_count: u32::try_from(word_count).unwrap_or(u32::MAX),
        reading_time_minutes: u32::try_from(reading_time_minutes).unwrap_or(u32::MAX),
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
        analysis_status: ProcessingStatus::Pending,
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
fn make_excerpt(text: &str, max: usize) -> String {
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
pub(super) fn count_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

fn author(
    ex: &Extracted,
    meta: &PageMeta,
    ld: &JsonLd,
    feed: Option<&FeedEntryMeta>,
    base: &Url,
) -> Option<ArticleAuthor> {
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
        return Some(ArticleAuthor {
            name: Some(n),
            profile_url: ld.author_url.as_deref().and_then(|u| resolve(base, u)),
        });
    }
    if let Some(n) = ld.author_name.as_deref().and_then(clean_name) {
        return Some(ArticleAuthor {
            name: Some(n),
            profile_url: ld.author_url.as_deref().and_then(|u| resolve(base, u)),
        });
    }
    // `article:author` is often a profile URL rather than a name.
    let meta_author = meta.get("author").or_else(|| meta.get("article:author"));
    if let Some(a) = meta_author {
        if a.starts_with("http://") || a.starts_with("https://") {
            let name = meta.get("author").filter(|x| !x.starts_with("http"));
            if let Some(n) = name.and_then(clean_name) {
                return Some(ArticleAuthor {
                    name: Some(n),
                    profile_url: Some(a.to_string()),
                });
            }
        } else if let Some(n) = clean_name(a) {
            return Some(ArticleAuthor {
                name: Some(n),
                profile_url: meta
                    .get("article:author")
                    .filter(|u| u.starts_with("http"))
                    .map(str::to_string),
            });
        }
    }
    feed.and_then(|f| f.author.as_deref())
        .and_then(clean_name)
        .map(|name| ArticleAuthor {
            name: Some(name),
            profile_url: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_page_of_binary_text_is_refused_with_the_reason() {
        let now = Utc::now();
        // What lossy UTF-8 made of a PNG's first bytes before the crawler refused binary bodies.
        let mut text = String::from_utf8_lossy(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").into_owned();
        text.push_str(&"\u{1}\u{fffd}x".repeat(100));
        let raw = crate::news::normalize::raw_from_file(text, "https://example.com/a.png", "", now)
            .unwrap();
        let err = build_article(&raw, None, &SymbolAliases::default_crypto(), now).unwrap_err();
        assert!(matches!(err, NormalizeError::NotText(_)), "{err}");
        assert!(err.to_string().contains("(as stored) is not text"), "{err}");
    }
    use crate::news::normalize::{raw_from_file, url_hash};

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

    /// The article of a page as the normalizer builds it from a raw page with no configured source.
    fn normalize(html: &str, url: &str, source_name: &str, feed: Option<FeedEntryMeta>) -> Article {
        let mut raw = raw_from_file(html.to_string(), url, source_name, Utc::now()).unwrap();
        raw.feed_entry = feed;
        build_article(&raw, None, &SymbolAliases::default_crypto(), Utc::now()).unwrap()
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
        let feed = FeedEntryMeta {
            published_at: Some("2024-01-16T00:00:00Z".parse().unwrap()),
            categories: vec!["Crypto".into()],
            ..FeedEntryMeta::default()
        };
        let a = normalize(
            &html,
            "https://News.test/a/1?utm_medium=x#top",
            "NewsTest",
            Some(feed),
        );
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
        let author = a.author;
        assert_eq!(author.name.as_deref(), Some("John Smith"));
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
        assert_eq!(
            (a.source.name.as_str(), a.source.url.as_str()),
            ("NewsTest", "https://news.test")
        );
        assert_eq!(a.analysis_status, ProcessingStatus::Pending);
    }

    #[test]
    fn feed_fills_gaps_and_bad_url_fails() {
        let feed = FeedEntryMeta {
            title: Some("Feed title".into()),
            published_at: Some("2024-01-16T00:00:00Z".parse().unwrap()),
            author: Some("By Feed Author".into()),
            ..FeedEntryMeta::default()
        };
        let a = normalize(
            "<html><body></body></html>",
            "https://a.test/x",
            "",
            Some(feed),
        );
        assert_eq!(a.title, "Feed title");
        assert_eq!(
            a.published_at.unwrap().to_rfc3339(),
            "2024-01-16T00:00:00+00:00"
        );
        assert_eq!(a.author.name.as_deref(), Some("Feed Author"));
        assert_eq!(a.source, ArticleSource::default());
        assert_eq!(a.word_count, 0);
        assert_eq!(a.reading_time_minutes, 0);
        let mut bad = raw_from_file(String::new(), "https://a.test/x", "", Utc::now()).unwrap();
        bad.url = "::".into();
        assert!(matches!(
            build_article(&bad, None, &SymbolAliases::new(), Utc::now()),
            Err(NormalizeError::InvalidUrl(_))
        ));
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
        let a = normalize(&html, &url, "cleveland.com", None);
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
        let a = normalize(&html, &url, "", None);
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
