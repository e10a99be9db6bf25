//! The parsed DOM copied into a compact arena: content elements only (scripts, forms and other
//! non-content subtrees dropped), depth and node count capped, head metadata collected on the way.
//! Built iteratively, so arbitrarily deep input cannot overflow the stack.

use super::BodyImage;
use super::hints::apply_attrs;
use super::meta::{JsonLd, PageMeta, collect_head};
use super::score::Stats;
use super::text::collapse;
use scraper::{Html, Node};

/// Elements deeper than this are treated as transparent (their content is kept
/// but attached to the deepest allowed ancestor).
pub(super) const MAX_DEPTH: usize = 256;
/// Hard cap on arena nodes; content after this is dropped.
const MAX_NODES: usize = 400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
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
    pub(super) fn of(name: &str) -> Option<Tag> {
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

    pub(super) fn is_inline(self) -> bool {
        matches!(
            self,
            Tag::Text | Tag::A | Tag::Inline | Tag::Img | Tag::Br | Tag::Time
        )
    }

    pub(super) fn is_heading(self) -> bool {
        matches!(self, Tag::H1 | Tag::H2 | Tag::Hn)
    }
}

#[derive(Debug, Clone)]
pub(super) struct ANode {
    pub(super) tag: Tag,
    pub(super) parent: usize,
    pub(super) children: Vec<usize>,
    /// Text content (text nodes only).
    pub(super) text: String,
    /// Class/id weight, Readability style (+/-25 per attribute).
    pub(super) weight: i32,
    /// Class/id/role says "boilerplate" with no positive counter-hint.
    pub(super) unlikely: bool,
    /// `hidden`, `display:none`, or a class for pop-ups/screen-reader text.
    pub(super) hidden: bool,
    /// Class/id names page furniture (caption, byline, dateline, ...) that
    /// is dropped when short.
    pub(super) furniture: bool,
    /// Hash of the class attribute (sibling "same class" bonus).
    pub(super) class_hash: u64,
    /// `class` and `id`, kept for diagnostics.
    pub(super) label: Box<str>,
    pub(super) img: Option<BodyImage>,
}

impl ANode {
    pub(super) fn new(tag: Tag, parent: usize) -> Self {
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

pub(super) const NONE: usize = usize::MAX;

pub(super) struct Arena {
    pub(super) nodes: Vec<ANode>,
    /// Statistics with nothing removed.
    pub(super) base: Vec<Stats>,
    pub(super) meta: PageMeta,
}

impl Arena {
    pub(super) fn build(doc: &Html, collect_meta: bool) -> Arena {
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
    pub(super) fn build_from(root: ego_tree_ref::NodeRef<'_>, collect_meta: bool) -> Arena {
        let mut nodes: Vec<ANode> = Vec::with_capacity(4096);
        let mut meta = PageMeta::default();
        let mut scripts = Vec::new();
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
                            collect_head(&mut meta, &mut scripts, name, el, node);
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
        if collect_meta {
            meta.json_ld = JsonLd::parse(&scripts);
        }
        let mut a = Arena {
            nodes,
            base: Vec::new(),
            meta,
        };
        a.base = a.compute_stats(None);
        a
    }
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

/// Names the ego-tree node type through scraper so no direct dependency on
/// `ego-tree` is needed.
pub(super) mod ego_tree_ref {
    pub(crate) type NodeRef<'a> = <scraper::ElementRef<'a> as std::ops::Deref>::Target;
}
