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

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use scraper::{Html, Node, Selector};
use serde::{Deserialize, Serialize};

/// Input beyond this many bytes is ignored: real article pages are far smaller
/// and the parser's cost is linear in the input.
pub const MAX_HTML_BYTES: usize = 6 * 1024 * 1024;
/// Elements deeper than this are treated as transparent (their content is kept
/// but attached to the deepest allowed ancestor).
const MAX_DEPTH: usize = 256;
/// Hard cap on arena nodes; content after this is dropped.
const MAX_NODES: usize = 400_000;
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

/// Metadata collected from `<head>` and structured data while parsing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PageMeta {
    /// Text of `<title>`.
    pub title_tag: Option<String>,
    /// `<meta property|name|itemprop=K content=V>` pairs, keys lower-cased.
    pub metas: Vec<(String, String)>,
    /// `<link rel=canonical href>`.
    pub canonical: Option<String>,
    /// Raw text of each `application/ld+json` script.
    pub json_ld: Vec<String>,
    /// `lang` attribute of `<html>`.
    pub lang: Option<String>,
    /// `datetime` attributes of `<time>` elements, in document order.
    pub time_datetimes: Vec<String>,
}

impl PageMeta {
    /// First value of a meta key (case-insensitive key, non-empty value).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.metas
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// All values of a meta key (e.g. repeated `article:tag`).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.metas
            .iter()
            .filter(move |(k, v)| k.eq_ignore_ascii_case(key) && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }
}

/// CSS selectors configured per news source (`news_sources.selectors`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selectors {
    pub title: Option<String>,
    pub body: Option<String>,
    pub published_date: Option<String>,
    pub author: Option<String>,
}

/// Extracts title and main text from an arbitrary HTML page. Never panics;
/// returns an empty body when nothing article-like is found.
pub fn extract_main_text(html: &str, url: Option<&str>) -> Extracted {
    let doc = parse(html);
    let arena = Arena::build(&doc, true);
    generic(&arena, url)
}

/// Extracts with source-specific CSS selectors, falling back per field to the
/// generic extractor when a selector is missing, invalid or matches nothing.
pub fn extract_with_selectors(html: &str, selectors: &Selectors) -> Extracted {
    let doc = parse(html);
    let arena = Arena::build(&doc, true);
    let sel_body = selectors
        .body
        .as_deref()
        .and_then(parse_selector)
        .map(|sel| {
            let mut out = Out::default();
            let mut images = Vec::new();
            for el in doc.select(&sel) {
                let sub = Arena::build_from(*el, false);
                let removed = sub.removed_mask(true);
                let clean = sub.clean_mask(&removed, None);
                sub.render(0, Some(&clean), &mut out, &mut images);
                out.brk(2);
            }
            (out.finish(), images)
        })
        .filter(|(body, _)| !body.is_empty());
    let mut ex = match sel_body {
        Some((body, images)) => Extracted {
            title: None,
            body,
            author: None,
            published: None,
            images,
            method: Method::Selectors,
            meta: arena.meta.clone(),
        },
        None => generic(&arena, None),
    };
    if ex.title.is_none() || selectors.title.is_some() {
        let t = selectors
            .title
            .as_deref()
            .and_then(|s| select_text(&doc, s))
            .or_else(|| find_title(&arena));
        ex.title = t;
    }
    ex.author = selectors
        .author
        .as_deref()
        .and_then(|s| select_text(&doc, s));
    ex.published = selectors.published_date.as_deref().and_then(|s| {
        let sel = parse_selector(s)?;
        let el = doc.select(&sel).next()?;
        let v = el.value();
        v.attr("datetime")
            .or_else(|| v.attr("content"))
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .or_else(|| Some(collapse(&el.text().collect::<String>())).filter(|x| !x.is_empty()))
    });
    ex
}

fn parse_selector(s: &str) -> Option<Selector> {
    Selector::parse(s).ok()
}

fn select_text(doc: &Html, sel: &str) -> Option<String> {
    let sel = parse_selector(sel)?;
    doc.select(&sel)
        .map(|el| collapse(&el.text().collect::<String>()))
        .find(|t| !t.is_empty())
}

/// Parses after bounding size and nesting and dropping script/style text.
fn parse(html: &str) -> Html {
    let stripped = strip_raw_text(clip(html));
    Html::parse_document(&limit_nesting(&stripped))
}

/// Open-tag depth beyond which further tags are dropped before parsing.
const MAX_TAG_DEPTH: usize = 400;

/// Drops start/end tags nested deeper than `MAX_TAG_DEPTH` (their text is
/// kept). The HTML tree builder does scope checks proportional to the depth
/// of the open-element stack, so pathological nesting would make parsing
/// quadratic. Depth is approximated from the tag stream: void elements and
/// elements with optional end tags (`p`, `li`, ...) are not counted, unless the tree builder
/// nests them when repeated (`rt`, `rp` and `optgroup` outside their parents do: 10,000 of them
/// cost a minute of parsing, each one walking the whole stack of open elements).
fn limit_nesting(html: &str) -> Cow<'_, str> {
    let b = html.as_bytes();
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    let (mut depth, mut skipped) = (0usize, 0usize);
    while let Some(off) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        let p = i + off;
        if starts_with_ci(b, p, b"<!--") {
            match find_from(b, p + 4, b"-->") {
                Some(e) => {
                    i = e + 3;
                    continue;
                }
                None => break,
            }
        }
        let closing = b.get(p + 1) == Some(&b'/');
        let start = if closing { p + 2 } else { p + 1 };
        let mut end = start;
        while end < b.len() && b[end].is_ascii_alphanumeric() {
            end += 1;
        }
        if end == start {
            i = p + 1;
            continue;
        }
        let Some(gt) = b[end..].iter().position(|&c| c == b'>').map(|g| g + end) else {
            break;
        };
        i = gt + 1;
        let name = html[start..end].to_ascii_lowercase();
        let uncounted = matches!(
            name.as_str(),
            "area"
                | "base"
                | "br"
                | "col"
                | "embed"
                | "hr"
                | "img"
                | "input"
                | "link"
                | "meta"
                | "source"
                | "track"
                | "wbr"
                | "p"
                | "li"
                | "dt"
                | "dd"
                | "tr"
                | "td"
                | "th"
                | "option"
                | "thead"
                | "tbody"
                | "tfoot"
                | "colgroup"
                | "html"
                | "head"
                | "body"
        ) || (!closing && b[gt - 1] == b'/');
        if uncounted {
            continue;
        }
        let drop = if closing {
            if skipped > 0 {
                skipped -= 1;
                true
            } else {
                depth = depth.saturating_sub(1);
                false
            }
        } else if depth >= MAX_TAG_DEPTH {
            skipped += 1;
            true
        } else {
            depth += 1;
            false
        };
        if drop {
            out.push_str(&html[last..p]);
            last = gt + 1;
        }
    }
    if last == 0 {
        return Cow::Borrowed(html);
    }
    out.push_str(&html[last..]);
    Cow::Owned(out)
}

/// Empties `<script>` (except JSON-LD) and `<style>` elements before parsing.
/// They are half the bytes of a typical news page and never content, and the
/// parser's raw-text handling is a large share of the parse time. Comments are
/// skipped so a commented-out `<script>` cannot swallow real markup. Only
/// ASCII delimiters are cut at, so slices stay on char boundaries.
pub fn strip_raw_text(html: &str) -> Cow<'_, str> {
    let b = html.as_bytes();
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while let Some(off) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        let p = i + off;
        if starts_with_ci(b, p, b"<!--") {
            match find_from(b, p + 4, b"-->") {
                Some(e) => {
                    i = e + 3;
                    continue;
                }
                None => break,
            }
        }
        let name: &[u8] = if starts_with_ci(b, p, b"<script") {
            b"</script"
        } else if starts_with_ci(b, p, b"<style") {
            b"</style"
        } else {
            i = p + 1;
            continue;
        };
        // The tag name must end here ("<scripts>" is another element).
        let after = p + name.len() - 1;
        if !matches!(b.get(after), Some(c) if c.is_ascii_whitespace() || *c == b'>' || *c == b'/') {
            i = p + 1;
            continue;
        }
        let Some(gt) = b
            .get(after..)
            .and_then(|r| r.iter().position(|&c| c == b'>'))
        else {
            break;
        };
        let gt = after + gt;
        let keep = name == b"</script" && html[p..gt].to_ascii_lowercase().contains("ld+json");
        let mut close = gt + 1;
        let end = loop {
            match find_from(b, close, b"</") {
                Some(c) if starts_with_ci(b, c, name) => break Some(c),
                Some(c) => close = c + 2,
                None => break None,
            }
        };
        let Some(end) = end else {
            break;
        };
        if !keep && end > gt + 1 {
            out.push_str(&html[last..=gt]);
            last = end;
        }
        i = end + 2;
    }
    if last == 0 {
        return Cow::Borrowed(html);
    }
    out.push_str(&html[last..]);
    Cow::Owned(out)
}

fn starts_with_ci(b: &[u8], at: usize, pat: &[u8]) -> bool {
    b.get(at..at + pat.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(pat))
}

fn find_from(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    let hay = b.get(from..)?;
    hay.windows(pat.len())
        .position(|w| w == pat)
        .map(|x| x + from)
}

/// Truncates to `MAX_HTML_BYTES` on a char boundary.
fn clip(html: &str) -> &str {
    if html.len() <= MAX_HTML_BYTES {
        return html;
    }
    let mut end = MAX_HTML_BYTES;
    while end > 0 && !html.is_char_boundary(end) {
        end -= 1;
    }
    &html[..end]
}

/// Collapses all whitespace runs to one space and trims.
pub fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
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
    if let Some(ld) = json_ld_body(&arena.meta)
        && prefer_json_ld(&body, &ld)
    {
        body = ld;
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

/// Share of `a`'s lower-cased words that also occur in `b`.
fn word_overlap(a: &str, b: &str) -> f32 {
    let split = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (wa, wb) = (split(a), split(b));
    if wa.is_empty() {
        return 0.0;
    }
    let set: std::collections::HashSet<&str> = wb.iter().map(String::as_str).collect();
    wa.iter().filter(|w| set.contains(w.as_str())).count() as f32 / wa.len() as f32
}

/// Returns the longest `articleBody` string found in the page's JSON-LD.
pub fn json_ld_body(meta: &PageMeta) -> Option<String> {
    let mut best: Option<String> = None;
    for raw in &meta.json_ld {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.trim()) else {
            continue;
        };
        let mut stack = vec![&v];
        let mut steps = 0;
        while let Some(x) = stack.pop() {
            steps += 1;
            if steps > 10_000 {
                break;
            }
            match x {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(b)) = m.get("articleBody") {
                        let b = b.trim();
                        if best.as_ref().is_none_or(|x| b.len() > x.len()) {
                            best = Some(b.to_string());
                        }
                    }
                    stack.extend(m.values());
                }
                serde_json::Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
    }
    best.filter(|b| !b.is_empty())
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

// ---------------------------------------------------------------------------
// Arena

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Text,
    A,
    P,
    Div,
    Section,
    Article,
    Main,
    Body,
    H1,
    H2,
    Hn,
    Li,
    Ul,
    Ol,
    Dl,
    Dd,
    Dt,
    Table,
    Tr,
    Td,
    Th,
    Pre,
    Blockquote,
    Br,
    Hr,
    Img,
    Figure,
    Figcaption,
    Header,
    Footer,
    Nav,
    Aside,
    Form,
    Address,
    Time,
    Inline,
    Block,
}

impl Tag {
    fn of(name: &str) -> Option<Tag> {
        Some(match name {
            "a" => Tag::A,
            "p" => Tag::P,
            "div" => Tag::Div,
            "section" => Tag::Section,
            "article" => Tag::Article,
            "main" => Tag::Main,
            "body" => Tag::Body,
            "h1" => Tag::H1,
            "h2" => Tag::H2,
            "h3" | "h4" | "h5" | "h6" => Tag::Hn,
            "li" => Tag::Li,
            "ul" => Tag::Ul,
            "ol" => Tag::Ol,
            "dl" => Tag::Dl,
            "dd" => Tag::Dd,
            "dt" => Tag::Dt,
            "table" => Tag::Table,
            "tr" => Tag::Tr,
            "td" => Tag::Td,
            "th" => Tag::Th,
            "pre" => Tag::Pre,
            "blockquote" => Tag::Blockquote,
            "br" => Tag::Br,
            "hr" => Tag::Hr,
            "img" => Tag::Img,
            "figure" => Tag::Figure,
            "figcaption" => Tag::Figcaption,
            "header" => Tag::Header,
            "footer" => Tag::Footer,
            "nav" => Tag::Nav,
            "aside" => Tag::Aside,
            "form" => Tag::Form,
            "address" => Tag::Address,
            "time" => Tag::Time,
            "script" | "style" | "noscript" | "template" | "svg" | "iframe" | "object"
            | "embed" | "canvas" | "button" | "select" | "textarea" | "input" | "head" | "math"
            | "video" | "audio" | "map" | "dialog" | "option" | "datalist" | "meta" | "link"
            | "title" => return None,
            "span" | "b" | "strong" | "i" | "em" | "u" | "s" | "strike" | "small" | "big"
            | "sub" | "sup" | "abbr" | "cite" | "code" | "q" | "mark" | "font" | "label" | "tt"
            | "kbd" | "samp" | "var" | "dfn" | "ins" | "del" | "bdi" | "bdo" | "wbr" | "data"
            | "picture" | "source" | "nobr" | "acronym" => Tag::Inline,
            _ => Tag::Block,
        })
    }

    fn is_inline(self) -> bool {
        matches!(
            self,
            Tag::Text | Tag::A | Tag::Inline | Tag::Img | Tag::Br | Tag::Time
        )
    }

    fn is_heading(self) -> bool {
        matches!(self, Tag::H1 | Tag::H2 | Tag::Hn)
    }
}

#[derive(Debug, Clone)]
struct ANode {
    tag: Tag,
    parent: usize,
    children: Vec<usize>,
    /// Text content (text nodes only).
    text: String,
    /// Class/id weight, Readability style (+/-25 per attribute).
    weight: i32,
    /// Class/id/role says "boilerplate" with no positive counter-hint.
    unlikely: bool,
    /// `hidden`, `display:none`, or a class for pop-ups/screen-reader text.
    hidden: bool,
    /// Class/id names page furniture (caption, byline, dateline, ...) that
    /// is dropped when short.
    furniture: bool,
    /// Hash of the class attribute (sibling "same class" bonus).
    class_hash: u64,
    /// `class` and `id`, kept for diagnostics.
    label: Box<str>,
    img: Option<BodyImage>,
}

impl ANode {
    fn new(tag: Tag, parent: usize) -> Self {
        ANode {
            tag,
            parent,
            children: Vec::new(),
            text: String::new(),
            weight: 0,
            unlikely: false,
            hidden: false,
            furniture: false,
            class_hash: 0,
            label: Box::from(""),
            img: None,
        }
    }
}

/// Subtree statistics, computed per pass because removed nodes must not count
/// (a sidebar's links would otherwise inflate its container's link density).
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    text_len: u32,
    link_len: u32,
    commas: u32,
    /// Text directly in this element or in inline descendants (not under a
    /// nested block).
    inline_len: u32,
    inline_commas: u32,
    p_count: u32,
    img_count: u32,
    li_count: u32,
    heading_len: u32,
    time_count: u32,
    has_block_child: bool,
}

impl Stats {
    fn link_density(&self) -> f32 {
        if self.text_len == 0 {
            0.0
        } else {
            self.link_len as f32 / self.text_len as f32
        }
    }
}

const NONE: usize = usize::MAX;

struct Arena {
    nodes: Vec<ANode>,
    /// Statistics with nothing removed.
    base: Vec<Stats>,
    meta: PageMeta,
}

impl Arena {
    fn build(doc: &Html, collect_meta: bool) -> Arena {
        let root = doc.root_element();
        let mut a = Arena::build_from(*root, collect_meta);
        if collect_meta {
            a.meta.lang = root
                .value()
                .attr("lang")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
        }
        a
    }

    /// Copies the subtree under `root` into the arena. Node 0 is `root`.
    fn build_from(root: ego_tree_ref::NodeRef<'_>, collect_meta: bool) -> Arena {
        let mut nodes: Vec<ANode> = Vec::with_capacity(4096);
        let mut meta = PageMeta::default();
        let mut depth: Vec<u16> = Vec::with_capacity(4096);
        nodes.push(ANode::new(Tag::Block, NONE));
        depth.push(0);
        let mut stack = Vec::with_capacity(256);
        for c in root.children().rev() {
            stack.push((c, 0usize));
        }
        if let Some(el) = root.value().as_element() {
            nodes[0].tag = Tag::of(el.name()).unwrap_or(Tag::Block);
            apply_attrs(&mut nodes[0], el);
        }
        while let Some((node, parent)) = stack.pop() {
            if nodes.len() >= MAX_NODES {
                break;
            }
            match node.value() {
                Node::Text(t) => {
                    let s: &str = t;
                    if s.is_empty() {
                        continue;
                    }
                    let mut n = ANode::new(Tag::Text, parent);
                    n.text = if s.trim().is_empty() {
                        " ".to_string()
                    } else {
                        s.to_string()
                    };
                    let idx = nodes.len();
                    nodes.push(n);
                    depth.push(depth[parent].saturating_add(1));
                    nodes[parent].children.push(idx);
                }
                Node::Element(el) => {
                    let name = el.name();
                    let Some(tag) = Tag::of(name) else {
                        if collect_meta {
                            collect_head(&mut meta, name, el, node);
                        }
                        continue;
                    };
                    if collect_meta
                        && name == "time"
                        && let Some(dt) = el.attr("datetime")
                    {
                        meta.time_datetimes.push(dt.trim().to_string());
                    }
                    let idx = if depth[parent] as usize >= MAX_DEPTH {
                        // Transparent: attach content to the capped ancestor.
                        parent
                    } else {
                        let mut n = ANode::new(tag, parent);
                        apply_attrs(&mut n, el);
                        if tag == Tag::Img {
                            n.img = image_of(el);
                        }
                        let idx = nodes.len();
                        nodes.push(n);
                        depth.push(depth[parent] + 1);
                        nodes[parent].children.push(idx);
                        idx
                    };
                    for c in node.children().rev() {
                        stack.push((c, idx));
                    }
                }
                _ => {}
            }
        }
        let mut a = Arena {
            nodes,
            base: Vec::new(),
            meta,
        };
        a.base = a.compute_stats(None);
        a
    }

    fn compute_stats(&self, removed: Option<&[bool]>) -> Vec<Stats> {
        let mut drop = removed.map_or_else(|| vec![false; self.nodes.len()], <[bool]>::to_vec);
        self.stats_bottom_up(&mut drop, |_, _, _| false)
    }

    /// Bottom-up statistics over the nodes not in `drop`. `decide` may drop a
    /// node after its (already cleaned) subtree statistics are known, so inner
    /// link lists disappear before their container's link density is judged.
    fn stats_bottom_up(
        &self,
        drop: &mut [bool],
        mut decide: impl FnMut(usize, &ANode, &Stats) -> bool,
    ) -> Vec<Stats> {
        let mut st = vec![Stats::default(); self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            let nd = &self.nodes[i];
            let (tag, parent) = (nd.tag, nd.parent);
            if tag == Tag::Text {
                let t = nd.text.trim();
                let len = t.len() as u32;
                let commas = t.matches(',').count() as u32;
                let n = &mut st[i];
                n.text_len = len;
                n.inline_len = len;
                n.commas = commas;
                n.inline_commas = commas;
            } else {
                let n = &mut st[i];
                match tag {
                    Tag::A => n.link_len = n.text_len,
                    Tag::P => n.p_count += 1,
                    // Text-only divs are paragraphs on many CMSs.
                    Tag::Div | Tag::Block | Tag::Section
                        if !n.has_block_child && n.text_len >= 25 =>
                    {
                        n.p_count += 1
                    }
                    Tag::Img => n.img_count += 1,
                    Tag::Li => n.li_count += 1,
                    Tag::Time => n.time_count += 1,
                    _ => {}
                }
                if tag.is_heading() {
                    n.heading_len = n.text_len;
                }
            }
            if nd.hidden {
                drop[i] = true;
            }
            if !drop[i] && decide(i, nd, &st[i]) {
                drop[i] = true;
            }
            if parent == NONE || drop[i] {
                continue;
            }
            let c = st[i];
            let p = &mut st[parent];
            p.text_len += c.text_len;
            p.link_len += c.link_len;
            p.commas += c.commas;
            p.p_count += c.p_count;
            p.img_count += c.img_count;
            p.li_count += c.li_count;
            p.heading_len += c.heading_len;
            p.time_count += c.time_count;
            if tag.is_inline() {
                p.inline_len += c.inline_len;
                p.inline_commas += c.inline_commas;
            } else {
                p.has_block_child = true;
            }
        }
        st
    }

    /// Drop mask for rendering: the pass's removals plus conditional cleaning.
    fn clean_mask(&self, removed: &[bool], scores: Option<(&[f32], &[bool])>) -> Vec<bool> {
        let mut drop = removed.to_vec();
        let debug = *DEBUG;
        self.stats_bottom_up(&mut drop, |i, nd, sn| {
            let k = keep_node(i, nd, sn, scores)
                && !self.is_bare_link_block(i, nd, sn)
                && !self.is_promo_block(i, nd, sn);
            if debug && !k && sn.text_len > 100 {
                eprintln!(
                    "clean {i} {:?} [{}] len {} ld {:.2}",
                    nd.tag,
                    nd.label,
                    sn.text_len,
                    sn.link_density()
                );
            }
            !k
        });
        drop
    }

    /// A paragraph that is only a URL, e-mail address or handle path
    /// ("https://site/article.php", "name@paper.com", "twitter.com/name"):
    /// share/contact furniture, never prose.
    fn is_bare_link_block(&self, i: usize, nd: &ANode, sn: &Stats) -> bool {
        if nd.tag.is_inline() || sn.has_block_child || sn.text_len == 0 || sn.text_len > 300 {
            return false;
        }
        let t = self.text_of(i);
        let t = t.trim();
        !t.contains(char::is_whitespace)
            && t.contains('.')
            && (t.starts_with("http")
                || t.starts_with("www.")
                || t.contains('@')
                || t.contains('/'))
    }

    /// A short paragraph that opens with a call to action ("Sign up for our
    /// newsletter", "Follow us on ...", "Read more: ..."): publisher promos
    /// inserted into the article flow without a telling class name.
    fn is_promo_block(&self, i: usize, nd: &ANode, sn: &Stats) -> bool {
        if nd.tag.is_inline() || sn.has_block_child || sn.text_len == 0 || sn.text_len > 220 {
            return false;
        }
        PROMO.is_match(self.text_of(i).trim_start())
    }

    fn text_of(&self, idx: usize) -> String {
        let mut out = Out::default();
        let mut imgs = Vec::new();
        self.render(idx, None, &mut out, &mut imgs);
        out.finish()
    }

    fn parent_of(&self, i: usize) -> usize {
        self.nodes.get(i).map_or(NONE, |n| n.parent)
    }

    /// Readability-style candidate selection and rendering.
    fn extract(&self, strict: bool) -> (String, Vec<BodyImage>) {
        let n = self.nodes.len();
        let removed = self.removed_mask(strict);
        let st = self.compute_stats(Some(&removed));
        let mut score = vec![0f32; n];
        let mut init = vec![false; n];
        for i in 0..n {
            if removed[i] {
                continue;
            }
            let nd = &self.nodes[i];
            let sn = &st[i];
            let (len, commas, anchor) = match nd.tag {
                Tag::P | Tag::Pre | Tag::Td | Tag::H2 | Tag::Hn | Tag::Blockquote => {
                    (sn.text_len, sn.commas, nd.parent)
                }
                Tag::Div | Tag::Section | Tag::Article | Tag::Main | Tag::Block
                    if !sn.has_block_child =>
                {
                    (sn.text_len, sn.commas, nd.parent)
                }
                Tag::Div | Tag::Section | Tag::Article | Tag::Main | Tag::Block | Tag::Body => {
                    (sn.inline_len, sn.inline_commas, i)
                }
                _ => continue,
            };
            if len < 25 || nd.hidden {
                continue;
            }
            let s = 1.0 + commas as f32 + (len as f32 / 100.0).floor().min(3.0);
            let mut anc = anchor;
            let mut level = 0usize;
            while anc != NONE && level < 5 {
                if !init[anc] {
                    init[anc] = true;
                    score[anc] = self.init_score(anc);
                }
                let div = match level {
                    0 => 1.0,
                    1 => 2.0,
                    l => l as f32 * 3.0,
                };
                score[anc] += s / div;
                anc = self.nodes[anc].parent;
                level += 1;
            }
        }
        for i in 0..n {
            if init[i] {
                score[i] *= 1.0 - st[i].link_density();
            }
        }
        let mut cands: Vec<usize> = (0..n).filter(|&i| init[i] && !removed[i]).collect();
        cands.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
        let Some(&first) = cands.first() else {
            return (String::new(), Vec::new());
        };
        let mut top = first;
        // Several strong candidates sharing an ancestor: the article is split
        // (e.g. by ad slots) and the ancestor is the real container.
        let top_score = score[top];
        let alts: Vec<usize> = cands
            .iter()
            .skip(1)
            .take(4)
            .copied()
            .filter(|&c| score[c] / top_score >= 0.75)
            .collect();
        if alts.len() >= 3 {
            let mut p = self.parent_of(top);
            while p != NONE && self.nodes[p].tag != Tag::Body {
                let cnt = alts.iter().filter(|&&c| self.is_ancestor(p, c)).count();
                if cnt >= 3 {
                    top = p;
                    break;
                }
                p = self.parent_of(p);
            }
        }
        // Walk up while the parent scores higher (content split into blocks).
        let mut last = score[top];
        let threshold = last / 3.0;
        let mut p = self.parent_of(top);
        while p != NONE && self.nodes[p].tag != Tag::Body {
            if !init[p] {
                p = self.parent_of(p);
                continue;
            }
            if score[p] < threshold {
                break;
            }
            if score[p] > last {
                top = p;
                break;
            }
            last = score[p];
            p = self.parent_of(p);
        }
        // A lone child says nothing; its parent is the container.
        loop {
            let p = self.parent_of(top);
            if p == NONE || self.nodes[p].tag == Tag::Body {
                break;
            }
            let elems = self.nodes[p]
                .children
                .iter()
                .filter(|&&c| self.nodes[c].tag != Tag::Text)
                .count();
            if elems != 1 {
                break;
            }
            top = p;
        }
        let top_score = if init[top] { score[top] } else { top_score };
        // Sibling join.
        let mut picked = Vec::new();
        let parent = self.parent_of(top);
        if parent == NONE {
            picked.push(top);
        } else {
            let thr = (top_score * 0.2).max(10.0);
            let top_class = self.nodes[top].class_hash;
            for &s in &self.nodes[parent].children {
                if s == top {
                    picked.push(s);
                    continue;
                }
                if removed[s] || self.nodes[s].tag == Tag::Text {
                    continue;
                }
                let sn = &self.nodes[s];
                let ss = &st[s];
                let bonus = if top_class != 0 && sn.class_hash == top_class {
                    top_score * 0.2
                } else {
                    0.0
                };
                if init[s] && score[s] + bonus >= thr {
                    picked.push(s);
                } else if sn.tag == Tag::P
                    || (matches!(sn.tag, Tag::Div | Tag::Section | Tag::Block)
                        && !ss.has_block_child)
                {
                    // Readability turns text-only divs into paragraphs; they
                    // join like paragraphs (ledes, summaries).

                    let ld = ss.link_density();
                    let len = ss.text_len;
                    if (len > 80 && ld < 0.25)
                        || (len > 0 && len <= 80 && ld == 0.0 && self.ends_sentence(s))
                    {
                        picked.push(s);
                    }
                }
            }
        }
        if *DEBUG {
            for &c in cands.iter().take(8) {
                eprintln!(
                    "cand {c} {:?} [{}] score {:.1} len {} ld {:.2}",
                    self.nodes[c].tag,
                    self.nodes[c].label,
                    score[c],
                    st[c].text_len,
                    st[c].link_density()
                );
            }
            for &p in &picked {
                eprintln!(
                    "picked {p} {:?} [{}]",
                    self.nodes[p].tag, self.nodes[p].label
                );
            }
        }
        let clean = self.clean_mask(&removed, Some((&score, &init)));
        let mut out = Out::default();
        let mut images = Vec::new();
        for &p in &picked {
            self.render(p, Some(&clean), &mut out, &mut images);
            out.brk(2);
        }
        (out.finish(), images)
    }

    fn ends_sentence(&self, i: usize) -> bool {
        let t = self.text_of(i);
        let t = t.trim_end();
        t.ends_with('.') || t.contains(". ")
    }

    fn is_ancestor(&self, anc: usize, mut node: usize) -> bool {
        let mut steps = 0;
        while node != NONE && steps < MAX_DEPTH + 2 {
            if node == anc {
                return true;
            }
            node = self.nodes[node].parent;
            steps += 1;
        }
        false
    }

    fn init_score(&self, i: usize) -> f32 {
        let nd = &self.nodes[i];
        let base = match nd.tag {
            Tag::Div | Tag::Article | Tag::Section | Tag::Main => 5.0,
            Tag::Pre | Tag::Td | Tag::Blockquote => 3.0,
            Tag::Address
            | Tag::Ol
            | Tag::Ul
            | Tag::Dl
            | Tag::Dd
            | Tag::Dt
            | Tag::Li
            | Tag::Form => -3.0,
            Tag::H1 | Tag::H2 | Tag::Hn | Tag::Th => -5.0,
            _ => 0.0,
        };
        base + nd.weight as f32
    }

    /// Nodes dropped before scoring: hidden ones and, in strict mode, those
    /// whose class/id marks them as boilerplate. Inherited by descendants.
    fn removed_mask(&self, strict: bool) -> Vec<bool> {
        let mut m = vec![false; self.nodes.len()];
        for i in 0..self.nodes.len() {
            let nd = &self.nodes[i];
            let inherited = nd.parent != NONE && m[nd.parent];
            // The root (the document, or a selector's match) is never removed.
            m[i] = i != 0
                && (inherited
                    || nd.hidden
                    || (strict && nd.unlikely)
                    || (strict && matches!(nd.tag, Tag::Nav | Tag::Footer | Tag::Aside)));
        }
        m
    }

    /// Renders text of the subtree at `root` into `out`, skipping nodes the
    /// cleaner rejects. Iterative; emits paragraph breaks around blocks.
    fn render(
        &self,
        root: usize,
        drop: Option<&[bool]>,
        out: &mut Out,
        images: &mut Vec<BodyImage>,
    ) {
        enum Ev {
            Enter(usize),
            Exit(usize),
        }
        let mut stack = vec![Ev::Enter(root)];
        while let Some(ev) = stack.pop() {
            match ev {
                Ev::Enter(i) => {
                    let nd = &self.nodes[i];
                    if nd.tag == Tag::Text {
                        out.text(&nd.text);
                        continue;
                    }
                    if i != root && (nd.hidden || drop.is_some_and(|d| d[i])) {
                        continue;
                    }
                    match nd.tag {
                        Tag::Br => {
                            out.brk(1);
                            continue;
                        }
                        Tag::Img => {
                            if let Some(img) = &nd.img
                                && images.len() < 200
                            {
                                images.push(img.clone());
                            }
                            continue;
                        }
                        t if !t.is_inline() => out.brk(2),
                        _ => {}
                    }
                    stack.push(Ev::Exit(i));
                    for &c in nd.children.iter().rev() {
                        stack.push(Ev::Enter(c));
                    }
                }
                Ev::Exit(i) => {
                    if !self.nodes[i].tag.is_inline() {
                        out.brk(2);
                    }
                }
            }
        }
    }
}

/// Page furniture longer than this is kept (it is probably mislabelled content).
const FURNITURE_MAX: u32 = 250;
const LINK_ONLY_P: bool = true;

/// Whether a node inside the chosen content survives cleaning, judged on its
/// already-cleaned subtree statistics (Readability's `_cleanConditionally`).
fn keep_node(i: usize, nd: &ANode, sn: &Stats, scores: Option<(&[f32], &[bool])>) -> bool {
    if nd.furniture && sn.text_len < FURNITURE_MAX {
        return false;
    }
    // Datelines: a short block around a <time>.
    if sn.time_count > 0 && sn.text_len < 100 && !nd.tag.is_inline() {
        return false;
    }
    match nd.tag {
        Tag::H1 | Tag::Nav | Tag::Figcaption => false,
        Tag::P if LINK_ONLY_P && sn.text_len > 0 && sn.link_density() > 0.8 => false,
        Tag::H2 | Tag::Hn => !(nd.weight < 0 || sn.link_density() > 0.5),
        Tag::Div
        | Tag::Section
        | Tag::Ul
        | Tag::Ol
        | Tag::Table
        | Tag::Form
        | Tag::Aside
        | Tag::Header
        | Tag::Footer
        | Tag::Figure
        | Tag::Block
        | Tag::Dl => keep_conditional(i, nd, sn, scores),
        _ => true,
    }
}

fn keep_conditional(i: usize, nd: &ANode, sn: &Stats, scores: Option<(&[f32], &[bool])>) -> bool {
    let weight = nd.weight as f32;
    let score = match scores {
        Some((s, init)) if init[i] => s[i],
        _ => 0.0,
    };
    if weight + score < 0.0 {
        return false;
    }
    if sn.commas >= 10 {
        return true;
    }
    let is_list = matches!(nd.tag, Tag::Ul | Tag::Ol | Tag::Dl);
    let p = sn.p_count as f32;
    let img = sn.img_count as f32;
    let ld = sn.link_density();
    let len = sn.text_len;
    let heading_density = if len == 0 {
        0.0
    } else {
        sn.heading_len as f32 / len as f32
    };
    let remove = (img > 1.0 && p / img < 0.5 && len < 250 && nd.tag != Tag::Figure)
        || (!is_list
            && heading_density < 0.9
            && len < 25
            && (sn.img_count == 0 || sn.img_count > 2)
            && nd.tag != Tag::Figure)
        || (!is_list && weight < 25.0 && ld > 0.2)
        || (weight >= 25.0 && ld > 0.5)
        || (is_list && ld > 0.5);
    !remove
}

/// Text accumulator: collapses whitespace and separates blocks.
#[derive(Default)]
struct Out {
    s: String,
    space: bool,
    brk: u8,
}

impl Out {
    fn text(&mut self, t: &str) {
        for c in t.chars() {
            if c.is_whitespace() {
                self.space = true;
                continue;
            }
            if !self.s.is_empty() {
                if self.brk >= 2 {
                    self.s.push_str("\n\n");
                } else if self.brk == 1 {
                    self.s.push('\n');
                } else if self.space {
                    self.s.push(' ');
                }
            }
            self.brk = 0;
            self.space = false;
            self.s.push(c);
        }
    }

    fn brk(&mut self, n: u8) {
        self.brk = self.brk.max(n);
    }

    fn finish(self) -> String {
        self.s
    }
}

// ---------------------------------------------------------------------------
// Attribute hints

/// Words in class/id that mark boilerplate. Matched as substrings of the
/// lower-cased attribute, so they are chosen to be unambiguous.
const NEGATIVE: &[&str] = &[
    "comment",
    "sidebar",
    "footer",
    "footnote",
    "masthead",
    "outbrain",
    "taboola",
    "promo",
    "related",
    "share",
    "sharing",
    "social",
    "sponsor",
    "newsletter",
    "subscri",
    "signup",
    "sign-up",
    "breadcrumb",
    "widget",
    "popup",
    "modal",
    "cookie",
    "gdpr",
    "banner",
    "advert",
    "recommend",
    "trending",
    "popular",
    "pagination",
    "pager",
    "disqus",
    "skyscraper",
    "shoutbox",
    "combx",
    "toolbar",
    "navig",
    "navbar",
    "menu",
    "most-read",
    "mostread",
    "more-stories",
    "read-more",
    "readmore",
    "byline",
    "author",
    "caption",
    "credit",
    "tags",
    "print",
    "follow",
    "rss",
];

/// Whole tokens (split on non-alphanumerics) that mark boilerplate but are too
/// short to match as substrings.
const NEGATIVE_TOKENS: &[&str] = &[
    "ad", "ads", "adv", "dfp", "nav", "meta", "hidden", "hide", "tag", "aside", "extra", "share",
    "tools", "tool", "links", "login", "foot", "header", "teaser", "teasers",
];

/// Furniture markers (substrings) and tokens: captions, bylines, datelines.
const FURNITURE: &[&str] = &[
    "caption",
    "byline",
    "dateline",
    "timestamp",
    "credit",
    "author",
    "published",
    "updated",
    "share",
    "social",
    "related",
    "breadcrumb",
    "subscri",
    "newsletter",
    "promo",
    "disclaimer",
];
const FURNITURE_TOKENS: &[&str] = &[
    "date", "dates", "time", "pubdate", "meta", "tags", "tag", "ad", "ads", "advert", "label",
];
/// Pop-ups and screen-reader-only text: never visible article text.
const ALWAYS_HIDDEN: &[&str] = &[
    "rollover",
    "tooltip",
    "popover",
    "hovercard",
    "sr-only",
    "screen-reader",
    "visually-hidden",
    "visuallyhidden",
    "element-hidden",
    "offscreen",
];
const POSITIVE: &[&str] = &[
    "article",
    "body",
    "content",
    "entry",
    "hentry",
    "main",
    "post",
    "text",
    "blog",
    "story",
    "prose",
    "richtext",
    "rich-text",
];

/// Subset of negatives that make a block "unlikely" to be content at all
/// (removed before scoring in the strict pass).
const UNLIKELY: &[&str] = &[
    "comment",
    "sidebar",
    "footer",
    "masthead",
    "outbrain",
    "taboola",
    "related",
    "share",
    "social",
    "sponsor",
    "newsletter",
    "subscri",
    "breadcrumb",
    "popup",
    "modal",
    "cookie",
    "gdpr",
    "banner",
    "advert",
    "recommend",
    "trending",
    "popular",
    "pagination",
    "pager",
    "disqus",
    "skyscraper",
    "shoutbox",
    "combx",
    "navig",
    "navbar",
    "menu",
    "most-read",
    "mostread",
    "more-stories",
    "signup",
];

/// The hint word lists compiled to regexes once (literal alternations, which
/// the regex crate runs as a multi-substring search).
struct Hints {
    negative: Regex,
    positive: Regex,
    unlikely: Regex,
    furniture: Regex,
    always_hidden: Regex,
}

fn words_regex(subs: &[&str], tokens: &[&str]) -> Regex {
    let mut alts: Vec<String> = subs.iter().map(|w| regex::escape(w)).collect();
    if !tokens.is_empty() {
        let toks: Vec<String> = tokens.iter().map(|w| regex::escape(w)).collect();
        alts.push(format!(
            "(?:^|[^a-z0-9])(?:{})(?:$|[^a-z0-9])",
            toks.join("|")
        ));
    }
    // invariant: every alternative is an escaped literal or the fixed token
    // wrapper above, so the pattern is always valid.
    Regex::new(&alts.join("|")).expect("hint regex is built from escaped literals")
}

/// Openings of publisher calls to action (English only; other languages
/// simply do not match).
static PROMO: LazyLock<Regex> = LazyLock::new(|| {
    // invariant: a fixed, tested pattern.
    Regex::new(
        r"(?i)^(?:follow (?:us|@|\w+(?: \w+)? on (?:twitter|facebook|instagram))|subscribe (?:to|now|today)|sign up .{0,80}(?:newsletter|inbox)|share this (?:article|story)|read more:|related:|see more:|don'?t miss|advertisement$|this slideshow requires javascript|have a (?:news )?tip\?|get (?:the latest|our) .{0,40}(?:newsletter|inbox)|download (?:our|the) app)",
    )
    .expect("promo pattern is a valid regex")
});

/// `NEWSEXTRACT_DEBUG` set: print candidate scores and removals to stderr.
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("NEWSEXTRACT_DEBUG").is_some());

static HINTS: LazyLock<Hints> = LazyLock::new(|| Hints {
    negative: words_regex(NEGATIVE, NEGATIVE_TOKENS),
    positive: words_regex(POSITIVE, &[]),
    unlikely: words_regex(UNLIKELY, &["ad", "ads"]),
    furniture: words_regex(FURNITURE, FURNITURE_TOKENS),
    always_hidden: words_regex(ALWAYS_HIDDEN, &[]),
});

fn attr_weight(s: &str) -> i32 {
    if s.is_empty() {
        return 0;
    }
    let h = &*HINTS;
    let mut w = 0;
    if h.negative.is_match(s) {
        w -= 25;
    }
    if h.positive.is_match(s) {
        w += 25;
    }
    w
}

fn apply_attrs(n: &mut ANode, el: &scraper::node::Element) {
    let class = el.attr("class").unwrap_or("").to_ascii_lowercase();
    let id = el.attr("id").unwrap_or("").to_ascii_lowercase();
    n.weight = attr_weight(&class) + attr_weight(&id);
    if !class.is_empty() {
        n.class_hash = fnv(&class);
    }
    let both = if id.is_empty() {
        class
    } else {
        format!("{class} #{id}")
    };
    if *DEBUG {
        n.label = Box::from(both.as_str());
    }
    let role = el.attr("role").unwrap_or("").to_ascii_lowercase();
    let itemprop = el.attr("itemprop").unwrap_or("");
    let h = &*HINTS;
    let has_names = !both.is_empty();
    let positive = (has_names && h.positive.is_match(&both))
        || matches!(role.as_str(), "main" | "article")
        || itemprop.eq_ignore_ascii_case("articleBody");
    if itemprop.eq_ignore_ascii_case("articleBody") {
        n.weight += 25;
    }
    let unlikely_role = matches!(
        role.as_str(),
        "navigation"
            | "complementary"
            | "contentinfo"
            | "menu"
            | "menubar"
            | "dialog"
            | "alert"
            | "alertdialog"
            | "banner"
    );
    n.unlikely = (!positive && has_names && h.unlikely.is_match(&both)) || unlikely_role;
    n.furniture = has_names && h.furniture.is_match(&both);
    let style = el.attr("style").unwrap_or("");
    n.hidden = (has_names && h.always_hidden.is_match(&both))
        || el.attr("hidden").is_some()
        || (style.contains("display") && style.replace(' ', "").contains("display:none"))
        || (style.contains("visibility") && style.replace(' ', "").contains("visibility:hidden"));
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn image_of(el: &scraper::node::Element) -> Option<BodyImage> {
    let src = el.attr("src").map(str::trim).unwrap_or("");
    let url = if src.is_empty() || src.starts_with("data:") {
        ["data-src", "data-lazy-src", "data-original", "data-url"]
            .iter()
            .find_map(|a| el.attr(a).map(str::trim).filter(|s| !s.is_empty()))?
    } else {
        src
    };
    let alt = el.attr("alt").map(collapse).filter(|s| !s.is_empty());
    Some(BodyImage {
        url: url.to_string(),
        alt,
    })
}

fn collect_head(
    meta: &mut PageMeta,
    name: &str,
    el: &scraper::node::Element,
    node: ego_tree_ref::NodeRef<'_>,
) {
    match name {
        "meta" => {
            let key = el
                .attr("property")
                .or_else(|| el.attr("name"))
                .or_else(|| el.attr("itemprop"));
            if let (Some(k), Some(v)) = (key, el.attr("content"))
                && meta.metas.len() < 1000
            {
                meta.metas
                    .push((k.trim().to_ascii_lowercase(), v.to_string()));
            }
        }
        "link" => {
            let rel = el.attr("rel").unwrap_or("");
            if rel
                .split_whitespace()
                .any(|r| r.eq_ignore_ascii_case("canonical"))
                && meta.canonical.is_none()
            {
                meta.canonical = el.attr("href").map(|h| h.trim().to_string());
            }
        }
        "title" if meta.title_tag.is_none() => {
            let t = collapse(&node_text(node));
            if !t.is_empty() {
                meta.title_tag = Some(t);
            }
        }
        "script" => {
            let ty = el.attr("type").unwrap_or("");
            if ty.trim().eq_ignore_ascii_case("application/ld+json") && meta.json_ld.len() < 50 {
                meta.json_ld.push(node_text(node));
            }
        }
        "head" => {
            // The head is not content, but its meta/link/title/script are.
            let mut stack: Vec<_> = node.children().collect();
            stack.reverse();
            while let Some(c) = stack.pop() {
                if let Some(e) = c.value().as_element() {
                    collect_head(meta, e.name(), e, c);
                }
            }
        }
        _ => {}
    }
}

fn node_text(node: ego_tree_ref::NodeRef<'_>) -> String {
    let mut s = String::new();
    for d in node.descendants() {
        if let Some(t) = d.value().as_text() {
            s.push_str(t);
        }
    }
    s
}

/// Names the ego-tree node type through scraper so no direct dependency on
/// `ego-tree` is needed.
mod ego_tree_ref {
    pub type NodeRef<'a> = <scraper::ElementRef<'a> as std::ops::Deref>::Target;
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let ex = extract_with_selectors("", &Selectors::default());
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
            let sel = Selectors {
                body: Some("div.content".into()),
                title: Some("h1".into()),
                ..Selectors::default()
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
    fn raw_text_stripping_keeps_json_ld_and_markup() {
        let html = "<p>a</p><SCRIPT type=x>var s='<p>no</p>';</SCRIPT><!-- <script> --><p>b</p>\
                    <style>p{}</style><script type=\"application/ld+json\">{\"k\":1}</script>\
                    <scripts>keep</scripts><script>unterminated";
        let s = strip_raw_text(html);
        assert_eq!(
            s,
            "<p>a</p><SCRIPT type=x></SCRIPT><!-- <script> --><p>b</p><style></style>\
             <script type=\"application/ld+json\">{\"k\":1}</script><scripts>keep</scripts><script>unterminated"
        );
        assert!(matches!(strip_raw_text("<p>plain é</p>"), Cow::Borrowed(_)));
    }

    #[test]
    fn nesting_limit_drops_only_excess_tags() {
        let deep = format!(
            "{}x{}",
            "<b>".repeat(MAX_TAG_DEPTH + 5),
            "</b>".repeat(MAX_TAG_DEPTH + 5)
        );
        let out = limit_nesting(&deep);
        assert_eq!(out.matches("<b>").count(), MAX_TAG_DEPTH);
        assert_eq!(out.matches("</b>").count(), MAX_TAG_DEPTH);
        assert!(out.contains('x'));
        let normal = "<div><p>a<p>b<br><img src=x><span>c</span></div>";
        assert!(matches!(limit_nesting(normal), Cow::Borrowed(_)));
    }

    /// Found with the fuzz suite's nesting inputs: repeated `<rt>` / `<optgroup>` nest (they
    /// close only a sibling inside their own parent), so they must count towards the limit.
    #[test]
    fn self_nesting_optional_end_tags_are_limited_too() {
        for tag in ["rt", "rp", "optgroup"] {
            let deep = format!("<{tag}>").repeat(MAX_TAG_DEPTH + 100);
            let out = limit_nesting(&deep);
            assert_eq!(
                out.matches(&format!("<{tag}>")).count(),
                MAX_TAG_DEPTH,
                "{tag}"
            );
        }
    }

    #[test]
    fn huge_input_is_clipped_on_char_boundary() {
        let s = "é".repeat(MAX_HTML_BYTES); // 2 bytes per char
        let c = clip(&s);
        assert!(c.len() <= MAX_HTML_BYTES);
        assert!(s.is_char_boundary(c.len()));
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
        let sel = Selectors {
            title: Some("h1.t".into()),
            body: Some("#sidebar".into()),
            published_date: Some("time.when".into()),
            author: Some(".who".into()),
        };
        let ex = extract_with_selectors(&html, &sel);
        assert_eq!(ex.method, Method::Selectors);
        assert!(ex.body.starts_with("Sidebar sentence"));
        assert_eq!(ex.title.as_deref(), Some("Selector Title"));
        assert_eq!(ex.author.as_deref(), Some("Jane Doe"));
        assert_eq!(ex.published.as_deref(), Some("2024-01-15T08:00:00Z"));

        // A selector that matches nothing (or does not parse) falls back.
        for bad in ["div.nope", "[[["] {
            let sel = Selectors {
                body: Some(bad.into()),
                ..Selectors::default()
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
