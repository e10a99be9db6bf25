//! Class/id/role hints: the word lists that mark boilerplate, content and page furniture,
//! compiled once to regexes, and how an element's attributes set its weight and flags.

use super::arena::ANode;
use regex::Regex;
use std::sync::LazyLock;

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
pub(super) static PROMO: LazyLock<Regex> = LazyLock::new(|| {
    // invariant: a fixed, tested pattern.
    Regex::new(
        r"(?i)^(?:follow (?:us|@|\w+(?: \w+)? on (?:twitter|facebook|instagram))|subscribe (?:to|now|today)|sign up .{0,80}(?:newsletter|inbox)|share this (?:article|story)|read more:|related:|see more:|don'?t miss|advertisement$|this slideshow requires javascript|have a (?:news )?tip\?|get (?:the latest|our) .{0,40}(?:newsletter|inbox)|download (?:our|the) app)",
    )
    .expect("promo pattern is a valid regex")
});

/// `NEWSEXTRACT_DEBUG` set: print candidate scores and removals to stderr.
pub(super) static DEBUG: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("NEWSEXTRACT_DEBUG").is_some());

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

pub(super) fn apply_attrs(n: &mut ANode, el: &scraper::node::Element) {
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
    tradepipe_model::hash::fnv1a(tradepipe_model::hash::FNV_OFFSET, s.as_bytes())
}
