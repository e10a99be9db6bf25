//! What a source lists: entries of an RSS/Atom feed (with the metadata the normalizer falls back
//! on), or the article links of an HTML listing page. Pure functions, no I/O.

use crate::domain::news::FeedEntryMeta;
use scraper::{Html, Selector};
use std::collections::HashSet;
use url::Url;

/// One feed entry that links to an article page.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// Absolute http(s) URL of the article (as listed, not canonicalized).
    pub url: String,
    pub meta: FeedEntryMeta,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed at {base_url} cannot be parsed: {message}")]
    Parse { base_url: String, message: String },
    #[error("base URL {base_url:?} is not a URL: {message}")]
    BaseUrl { base_url: String, message: String },
    #[error("article_list selector {selector:?} is not valid CSS: {message}")]
    Selector { selector: String, message: String },
}

/// Parses an RSS (0.9x, 1.0, 2.0) or Atom feed. Entries without a usable http(s) link are
/// skipped (logged); relative links are resolved against `base_url` (the feed's URL); an entry
/// listed twice is kept once, first occurrence wins.
pub fn parse_feed(bytes: &[u8], base_url: &str) -> Result<Vec<FeedItem>, FeedError> {
    let base = parse_base(base_url)?;
    let feed = feed_rs::parser::parse(bytes).map_err(|e| FeedError::Parse {
        base_url: base_url.to_string(),
        message: e.to_string(),
    })?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        // The alternate link is the article; other rels (enclosure, self, replies) are not.
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or_else(|| entry.links.first())
            .map(|l| l.href.clone())
            // RSS guids are often the permalink.
            .or_else(|| (entry.id.starts_with("http")).then(|| entry.id.clone()));
        let Some(url) = link.and_then(|l| resolve(&base, &l)) else {
            tracing::debug!(base_url, entry_id = %entry.id, "feed entry without an article link skipped");
            continue;
        };
        if !seen.insert(url.clone()) {
            continue;
        }
        let text = |t: Option<feed_rs::model::Text>| {
            t.map(|t| t.content.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let meta = FeedEntryMeta {
            title: text(entry.title),
            published_at: entry.published.or(entry.updated),
            author: entry
                .authors
                .iter()
                .filter_map(|p| p.name.as_deref().or(p.email.as_deref()))
                .map(str::trim)
                .find(|n| !n.is_empty())
                .map(str::to_string),
            summary: text(entry.summary),
            categories: entry
                .categories
                .iter()
                .map(|c| c.label.clone().unwrap_or_else(|| c.term.clone()))
                .filter(|c| !c.trim().is_empty())
                .collect(),
        };
        out.push(FeedItem { url, meta });
    }
    Ok(out)
}

/// Links inside the elements matched by `article_list_selector` (the elements themselves when
/// they are links, and every `a[href]` within them), resolved against the listing page's URL,
/// http(s) only, fragments dropped, deduplicated in page order.
pub fn parse_listing(
    html: &str,
    base_url: &str,
    article_list_selector: &str,
) -> Result<Vec<String>, FeedError> {
    let base = parse_base(base_url)?;
    let list = Selector::parse(article_list_selector).map_err(|e| FeedError::Selector {
        selector: article_list_selector.to_string(),
        message: e.to_string(),
    })?;
    let anchors = Selector::parse("a[href]").map_err(|e| FeedError::Selector {
        selector: "a[href]".into(),
        message: e.to_string(),
    })?;
    let doc = Html::parse_document(html);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for el in doc.select(&list) {
        let own = (el.value().name() == "a")
            .then(|| el.value().attr("href"))
            .flatten();
        let inner = el.select(&anchors).filter_map(|a| a.value().attr("href"));
        for href in own.into_iter().chain(inner) {
            if let Some(url) = resolve(&base, href)
                && seen.insert(url.clone())
            {
                out.push(url);
            }
        }
    }
    Ok(out)
}

fn parse_base(base_url: &str) -> Result<Url, FeedError> {
    Url::parse(base_url).map_err(|e| FeedError::BaseUrl {
        base_url: base_url.to_string(),
        message: e.to_string(),
    })
}

fn resolve(base: &Url, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let mut u = base.join(href).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    u.set_fragment(None);
    Some(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_and_atom() {
        let rss = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
            <item><title> One </title><link>/a/1</link><pubDate>Tue, 19 Nov 2019 10:00:00 GMT</pubDate>
              <category>btc</category><author>x@y.z (X)</author></item>
            <item><title>Dup</title><link>http://h/a/1</link></item>
            <item><title>No link</title></item>
            <item><title>Guid</title><guid>http://h/a/2</guid></item>
            </channel></rss>"#;
        let items = parse_feed(rss, "http://h/feed.xml").unwrap();
        let urls: Vec<_> = items.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(urls, ["http://h/a/1", "http://h/a/2"]);
        assert_eq!(items[0].meta.title.as_deref(), Some("One"));
        assert!(items[0].meta.published_at.is_some());
        assert_eq!(items[0].meta.categories, ["btc"]);

        let atom =
            br#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
            <title>t</title><id>urn:x</id><updated>2019-11-19T10:00:00Z</updated>
            <entry><title>A</title><id>urn:1</id><updated>2019-11-19T10:00:00Z</updated>
              <link rel="alternate" href="http://h/b/1"/><author><name>Ann</name></author></entry>
            </feed>"#;
        let items = parse_feed(atom, "http://h/atom.xml").unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].url, "http://h/b/1");
        assert_eq!(items[0].meta.author.as_deref(), Some("Ann"));
        assert!(parse_feed(b"<html>nope", "http://h/").is_err());
    }

    #[test]
    fn listing_links_are_scoped_resolved_and_deduplicated() {
        let html = r#"<nav><a href="/about">About</a></nav>
            <article class="card"><a href="/x/1#top">1</a><a href="x/2">2</a></article>
            <article class="card"><a href="/x/1">1 again</a><a href="mailto:a@b">m</a></article>"#;
        let links = parse_listing(html, "http://h/list/", "article.card").unwrap();
        assert_eq!(links, ["http://h/x/1", "http://h/list/x/2"]);
        assert!(parse_listing(html, "http://h/", "[[").is_err());
    }
}
