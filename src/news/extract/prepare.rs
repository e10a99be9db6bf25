//! Input preparation before the HTML parser: bound the size, cap the tag nesting and empty
//! `<script>`/`<style>` text, so the parse of any page costs time linear in a bounded input.

use scraper::Html;
use std::borrow::Cow;

/// Input beyond this many bytes is ignored: real article pages are far smaller
/// and the parser's cost is linear in the input.
const MAX_HTML_BYTES: usize = 6 * 1024 * 1024;

/// Parses after bounding size and nesting and dropping script/style text.
pub(super) fn parse(html: &str) -> Html {
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
fn strip_raw_text(html: &str) -> Cow<'_, str> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
