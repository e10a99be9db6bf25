//! General main-content extraction for article pages.
//!
//! The approach follows Readability/trafilatura: the parsed DOM is copied into a
//! compact arena (dropping scripts, styles, forms controls and other non-content
//! subtrees), paragraph-like blocks are scored by text length and commas, the
//! scores are propagated to ancestors, weighted by class/id hints and penalised
//! by link density. The best container plus qualifying siblings is rendered to
//! text, with boilerplate sub-blocks (share bars, related lists, ads, captions of
//! galleries, ...) removed by conditional cleaning. JSON-LD `articleBody` is used
//! as an independent signal to choose between the DOM result and the metadata.
//!
//! Everything is iterative (no recursion over the DOM) so arbitrarily deep input
//! cannot overflow the stack, and input size, node count and depth are capped so
//! the work per page is bounded.

mod arena; // the DOM copied into a compact, bounded arena
mod hints; // class/id/role word lists and the weights they give
mod meta; // head metadata and JSON-LD, parsed once
mod prepare; // size and nesting bounds, raw-text stripping, the parse
mod score; // candidate scoring, conditional cleaning, rendering
mod selectors; // per-source CSS selectors
mod text; // whitespace collapsing, the text accumulator, word overlap

use arena::{Arena, Tag};
use prepare::parse;
use serde::Serialize;
use text::word_overlap;

pub use meta::{JsonLd, PageMeta};
pub use selectors::extract_with_selectors;
pub use text::collapse;

/// Below this many characters an extraction is considered a failure and the
/// next, more lenient pass is tried (Readability's `charThreshold`).
const MIN_BODY_CHARS: usize = 500;

/// Result of extracting an article page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extracted {
    /// Article headline (h1, `og:title` or `<title>`, in that order of trust).
    pub title: Option<String>,
    /// Main text; paragraphs separated by a blank line, whitespace collapsed.
    pub body: String,
    /// Author text from a configured selector, if any.
    pub author: Option<String>,
    /// Raw published-date text from a configured selector, if any (parsed by
    /// the normaliser, which also knows the metadata fallbacks).
    pub published: Option<String>,
    /// Images inside the extracted content, in document order.
    pub images: Vec<BodyImage>,
    /// Which strategy produced `body`.
    pub method: Method,
    /// Head metadata gathered during the same parse (used by the normaliser).
    pub meta: PageMeta,
}

/// An image found inside the article content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodyImage {
    /// `src` (or a lazy-loading attribute when `src` is a placeholder), as written.
    pub url: String,
    /// Non-empty `alt` text.
    pub alt: Option<String>,
}

/// Strategy that produced the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Method {
    /// Configured CSS selectors matched.
    Selectors,
    /// Generic DOM scoring.
    Dom,
    /// The page's JSON-LD `articleBody`.
    JsonLd,
    /// Nothing usable was found.
    #[default]
    Empty,
}

/// Extracts title and main text from an arbitrary HTML page. Never panics;
/// returns an empty body when nothing article-like is found.
pub fn extract_main_text(html: &str, url: Option<&str>) -> Extracted {
    let doc = parse(html);
    let arena = Arena::build(&doc, true);
    generic(&arena, url)
}

/// `url`, when given, makes image URLs absolute.
fn generic(arena: &Arena, url: Option<&str>) -> Extracted {
    let title = find_title(arena);
    let mut best: Option<(String, Vec<BodyImage>)> = None;
    // Pass 1 removes "unlikely" blocks by class/id before scoring, pass 2 keeps
    // them; a pass is accepted as soon as it yields a plausible article length.
    for strict in [true, false] {
        let (body, images) = arena.extract(strict);
        let n = body.chars().count();
        let better = best.as_ref().is_none_or(|(b, _)| n > b.chars().count());
        if better {
            best = Some((body, images));
        }
        if n >= MIN_BODY_CHARS {
            break;
        }
    }
    let (mut body, mut images) = best.unwrap_or_default();
    images.retain(|i| !i.url.starts_with("data:"));
    let mut method = if body.is_empty() {
        Method::Empty
    } else {
        Method::Dom
    };
    if let Some(ld) = &arena.meta.json_ld.body
        && prefer_json_ld(&body, ld)
    {
        body = ld.clone();
        method = Method::JsonLd;
        if images.is_empty() {
            images = Vec::new();
        }
    }
    if let Some(base) = url.and_then(|u| url::Url::parse(u.trim()).ok()) {
        for img in &mut images {
            if let Ok(abs) = base.join(&img.url) {
                img.url = abs.to_string();
            }
        }
    }
    Extracted {
        title,
        body,
        author: None,
        published: None,
        images,
        method,
        meta: arena.meta.clone(),
    }
}

/// JSON-LD bodies are often truncated teasers or, on some CMSs, include
/// boilerplate, so the DOM result wins unless it is clearly a failure: much
/// shorter than the structured body, or sharing few words with a long one
/// (the scorer picked the wrong block).
fn prefer_json_ld(dom: &str, ld: &str) -> bool {
    let d = dom.split_whitespace().count();
    let l = ld.split_whitespace().count();
    if l < 50 {
        return false;
    }
    if d * 3 < l {
        return true;
    }
    l >= 100 && word_overlap(ld, dom) < 0.3
}

/// Headline: the `<h1>` that agrees with the page's `og:title`/`<title>`
/// (sites also use `<h1>` for logos and section names), else `og:title`, else
/// the first substantial `<h1>`, else `<title>`.
fn find_title(arena: &Arena) -> Option<String> {
    let h1s: Vec<String> = arena
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.tag == Tag::H1 && !n.hidden)
        .take(10)
        .map(|(i, _)| collapse(&arena.text_of(i)))
        .filter(|t| t.chars().count() >= 8)
        .collect();
    let og = arena
        .meta
        .get("og:title")
        .map(collapse)
        .filter(|t| !t.is_empty());
    let reference = og.clone().or_else(|| arena.meta.title_tag.clone());
    if let Some(r) = &reference {
        let best = h1s
            .iter()
            .map(|h| (word_overlap(h, r), h))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((score, h)) = best
            && score >= 0.6
        {
            return Some(h.clone());
        }
    }
    og.or_else(|| h1s.into_iter().next())
        .or_else(|| arena.meta.title_tag.clone())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::news::SourceSelectors;

    fn para(n: usize, word: &str) -> String {
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&format!(
                "{word} sentence number {i}, with some words, commas, and detail. "
            ));
        }
        s
    }

    fn page(article: &str) -> String {
        format!(
            r#"<html><head><title>Site | Page</title>
            <meta property="og:title" content="OG Title"></head><body>
            <nav class="menu"><ul><li><a href="/a">Home</a></li><li><a href="/b">World news</a></li></ul></nav>
            <div id="sidebar"><p>{}</p></div>
            <div class="article-body">{article}</div>
            <div class="comments"><p>{}</p></div>
            <footer><p>Copyright footer text that is long enough to be a paragraph of its own.</p></footer>
            </body></html>"#,
            para(3, "Sidebar"),
            para(4, "Comment")
        )
    }

    #[test]
    fn picks_article_and_drops_boilerplate() {
        let html = page(&format!(
            "<h1>The Real Headline</h1><p>{}</p><p>{}</p><div class=\"share-tools\"><a href=\"/x\">Share</a></div><p>{}</p>",
            para(3, "Alpha"),
            para(3, "Beta"),
            para(3, "Gamma")
        ));
        let ex = extract_main_text(&html, None);
        assert_eq!(ex.method, Method::Dom);
        // The h1 does not agree with og:title, so og:title is trusted.
        assert_eq!(ex.title.as_deref(), Some("OG Title"));
        assert!(
            ex.body.starts_with("Alpha sentence number 0"),
            "{}",
            ex.body
        );
        assert!(ex.body.contains("Gamma sentence number 2"));
        for junk in [
            "Sidebar",
            "Comment",
            "Copyright",
            "Home",
            "Share",
            "Real Headline",
        ] {
            assert!(!ex.body.contains(junk), "{junk} leaked: {}", ex.body);
        }
        // Paragraphs are separated by a blank line.
        assert_eq!(ex.body.matches("\n\n").count(), 2);
    }

    #[test]
    fn inline_markup_does_not_split_or_merge_words() {
        let html = page(&format!(
            "<p>{} Inline<b>bold</b>text and <i>italic</i> words<br>after break.</p><p>{}</p>",
            para(3, "One"),
            para(3, "Two")
        ));
        let ex = extract_main_text(&html, None);
        assert!(
            ex.body
                .contains("Inlineboldtext and italic words\nafter break."),
            "{}",
            ex.body
        );
    }

    #[test]
    fn hidden_and_captions_and_datelines_are_dropped() {
        let html = page(&format!(
            "<div class=\"dateline\"><time datetime=\"2024-01-01\">Jan 1, 2024</time></div>\
             <p>{}</p><p style=\"display: none\">Secret hidden text here.</p>\
             <figure><img src=\"/i.jpg\" alt=\"Chart\"><figcaption>Caption words here</figcaption></figure>\
             <p>{}</p>",
            para(3, "Lead"),
            para(3, "More")
        ));
        let ex = extract_main_text(&html, None);
        assert!(ex.body.contains("Lead sentence"));
        assert!(!ex.body.contains("Secret"));
        assert!(!ex.body.contains("Caption words"));
        assert!(!ex.body.contains("Jan 1, 2024"));
        assert_eq!(ex.images.len(), 1);
        assert_eq!(ex.images[0].url, "/i.jpg");
        let ex = extract_main_text(&html, Some("https://site.test/news/a.html"));
        assert_eq!(ex.images[0].url, "https://site.test/i.jpg");
        assert_eq!(ex.images[0].alt.as_deref(), Some("Chart"));
        assert_eq!(ex.meta.time_datetimes, vec!["2024-01-01".to_string()]);
    }

    #[test]
    fn json_ld_body_used_when_dom_fails() {
        let body = para(10, "Structured");
        let html = format!(
            r#"<html><head><script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{body}"}}</script></head>
            <body><div><a href="/1">One</a> <a href="/2">Two</a></div></body></html>"#
        );
        let ex = extract_main_text(&html, None);
        assert_eq!(ex.method, Method::JsonLd);
        assert!(ex.body.starts_with("Structured sentence number 0"));
    }

    #[test]
    fn json_ld_body_used_when_dom_picks_unrelated_block() {
        let ld = "Quantum physicists measured entangled photons across distant laboratories. "
            .repeat(15);
        let html = format!(
            r#"<html><head><script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{ld}"}}</script></head>
            <body><div class="promo-text"><p>{}</p><p>{}</p></div></body></html>"#,
            para(20, "Unrelated promotional copy"),
            para(20, "More of it")
        );
        let ex = extract_main_text(&html, None);
        assert_eq!(ex.method, Method::JsonLd, "{}", ex.body);
        // Overlapping DOM text of similar length keeps the DOM result.
        let html = format!(
            r#"<html><head><script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{ld}"}}</script></head>
            <body><article><p>{}</p><p>{}</p></article></body></html>"#,
            ld.clone(),
            "Quantum photons, measured across laboratories, physicists said. ".repeat(5)
        );
        assert_eq!(extract_main_text(&html, None).method, Method::Dom);
    }

    #[test]
    fn promo_and_bare_link_paragraphs_are_dropped() {
        let html = page(&format!(
            "<p>{}</p><p>Sign up for our daily newsletter to get more.</p>\
             <p>Follow us on Twitter.</p><p>https://news.test/story-123.php</p><p>{}</p>",
            para(3, "Lead"),
            para(3, "Tail")
        ));
        let ex = extract_main_text(&html, None);
        assert!(ex.body.contains("Lead sentence") && ex.body.contains("Tail sentence"));
        for junk in ["Sign up", "Follow us", "https://"] {
            assert!(!ex.body.contains(junk), "{junk}: {}", ex.body);
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        for html in [
            "",
            "   ",
            "<",
            "<<<>>>",
            "<html><body></body></html>",
            "\u{0}\u{feff}<p>x</p>",
            "<p>unclosed <b><i>tags",
        ] {
            let ex = extract_main_text(html, None);
            assert!(ex.body.len() < 20, "{html:?} -> {:?}", ex.body);
        }
        let ex = extract_with_selectors("", &SourceSelectors::default());
        assert!(ex.body.is_empty());
    }

    #[test]
    fn random_tag_soup_does_not_panic() {
        const PIECES: &[&str] = &[
            "<div class=\"content\">",
            "</div>",
            "<p>",
            "</p>",
            "<a href=\"/x\">",
            "</a>",
            "<script>",
            "</script>",
            "<style>",
            "<!--",
            "-->",
            "Some words, here. ",
            "é漢字 ",
            "<table><tr><td>",
            "</td></tr></table>",
            "<br>",
            "<img src=\"data:x\" alt=\"a\">",
            "<time datetime=\"2024\">",
            "<h1>",
            "</h1>",
            "<![CDATA[",
            "<svg><g>",
            "<ul><li>",
            "</li></ul>",
            "<span hidden>",
            "&amp;&#x1F600;&bogus;",
            "<aside class=\"share\">",
            "<script type=\"application/ld+json\">{\"articleBody\":",
            "\"x\"}",
            "<",
        ];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..300 {
            let mut html = String::new();
            for _ in 0..200 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                html.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            let ex = extract_main_text(&html, Some("https://a.test/"));
            assert!(ex.body.len() <= html.len());
            let sel = SourceSelectors {
                body: Some("div.content".into()),
                title: Some("h1".into()),
                ..SourceSelectors::default()
            };
            let _ = extract_with_selectors(&html, &sel);
        }
    }

    #[test]
    fn deep_nesting_is_bounded_and_keeps_text() {
        let depth = 100_000;
        let html = format!(
            "<html><body>{}<p>{}</p>{}</body></html>",
            "<div>".repeat(depth),
            para(5, "Deep"),
            "</div>".repeat(depth)
        );
        // Completing at all (no stack overflow on 100k nested tags) is the point; speed belongs to
        // the benchmark, not to an assertion.
        let ex = extract_main_text(&html, None);
        assert!(ex.body.contains("Deep sentence number 4"), "{}", ex.body);
    }

    #[test]
    fn selectors_win_and_fall_back() {
        let html = page(&format!(
            "<h1 class=\"t\">Selector Title</h1><div class=\"byline\"><span class=\"who\">Jane Doe</span> \
             <time class=\"when\" datetime=\"2024-01-15T08:00:00Z\">yesterday</time></div>\
             <p>{}</p><p>{}</p>",
            para(3, "Body"),
            para(3, "Rest")
        ));
        let sel = SourceSelectors {
            title: Some("h1.t".into()),
            body: Some("#sidebar".into()),
            published_date: Some("time.when".into()),
            author: Some(".who".into()),
            article_list: None,
        };
        let ex = extract_with_selectors(&html, &sel);
        assert_eq!(ex.method, Method::Selectors);
        assert!(ex.body.starts_with("Sidebar sentence"));
        assert_eq!(ex.title.as_deref(), Some("Selector Title"));
        assert_eq!(ex.author.as_deref(), Some("Jane Doe"));
        assert_eq!(ex.published.as_deref(), Some("2024-01-15T08:00:00Z"));

        // A selector that matches nothing (or does not parse) falls back.
        for bad in ["div.nope", "[[["] {
            let sel = SourceSelectors {
                body: Some(bad.into()),
                ..SourceSelectors::default()
            };
            let ex = extract_with_selectors(&html, &sel);
            assert_eq!(ex.method, Method::Dom);
            assert!(ex.body.starts_with("Body sentence"), "{}", ex.body);
        }
    }

    #[test]
    fn title_prefers_h1_matching_og_title() {
        let html = format!(
            r#"<html><head><meta property="og:title" content="Bitcoin hits record | Site"></head><body>
            <h1>The Daily Site Logo</h1><article><h1>Bitcoin hits record</h1><p>{}</p></article></body></html>"#,
            para(5, "Body")
        );
        assert_eq!(
            extract_main_text(&html, None).title.as_deref(),
            Some("Bitcoin hits record")
        );
        let html = r#"<html><head><title>Doc title</title></head><body><h1>Only headline here</h1></body></html>"#;
        assert_eq!(
            extract_main_text(html, None).title.as_deref(),
            Some("Only headline here")
        );
    }

    #[test]
    fn head_metadata_is_collected() {
        let html = r#"<html lang="en-GB"><head><title> A  title </title>
            <meta property="og:title" content="OG"><meta name="keywords" content="a, b">
            <link rel="canonical" href="https://x.test/a"></head><body></body></html>"#;
        let ex = extract_main_text(html, None);
        assert_eq!(ex.meta.title_tag.as_deref(), Some("A title"));
        assert_eq!(ex.meta.get("OG:TITLE"), Some("OG"));
        assert_eq!(ex.meta.canonical.as_deref(), Some("https://x.test/a"));
        assert_eq!(ex.meta.lang.as_deref(), Some("en-GB"));
        // No h1, so the og:title is the title.
        assert_eq!(ex.title.as_deref(), Some("OG"));
    }
}
