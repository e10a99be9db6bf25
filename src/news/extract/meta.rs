//! Page metadata gathered while the arena is built: `<head>` meta/link/title, `<time datetime>`,
//! and the page's JSON-LD, parsed once here into the article-level fields both the extractor
//! (`articleBody`) and the normalizer (headline, date, author, keywords, sections) use.

use super::arena::ego_tree_ref;
use super::text::collapse;
use serde::Serialize;
use serde_json::Value;

/// Metadata collected from `<head>` and structured data while parsing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PageMeta {
    /// Text of `<title>`.
    pub title_tag: Option<String>,
    /// `<meta property|name|itemprop=K content=V>` pairs, keys lower-cased.
    pub metas: Vec<(String, String)>,
    /// `<link rel=canonical href>`.
    pub canonical: Option<String>,
    /// The page's JSON-LD (every `application/ld+json` script), parsed once.
    pub json_ld: JsonLd,
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
    pub(crate) fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.metas
            .iter()
            .filter(move |(k, v)| k.eq_ignore_ascii_case(key) && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }
}

/// Collects one head element into `meta`; the raw text of JSON-LD scripts goes to `scripts`
/// (at most 50), to be parsed once when the whole page has been seen.
pub(super) fn collect_head(
    meta: &mut PageMeta,
    scripts: &mut Vec<String>,
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
            if ty.trim().eq_ignore_ascii_case("application/ld+json") && scripts.len() < 50 {
                scripts.push(node_text(node));
            }
        }
        "head" => {
            // The head is not content, but its meta/link/title/script are.
            let mut stack: Vec<_> = node.children().collect();
            stack.reverse();
            while let Some(c) = stack.pop() {
                if let Some(e) = c.value().as_element() {
                    collect_head(meta, scripts, e.name(), e, c);
                }
            }
        }
        _ => {}
    }
}

pub(super) fn node_text(node: ego_tree_ref::NodeRef<'_>) -> String {
    let mut s = String::new();
    for d in node.descendants() {
        if let Some(t) = d.value().as_text() {
            s.push_str(t);
        }
    }
    s
}

/// The article-level fields of a page's JSON-LD. `body` is the longest `articleBody` anywhere in
/// it; the other fields come from the first article-like object (`*Article`, `BlogPosting`,
/// `Report`) with a headline or a date.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonLd {
    pub body: Option<String>,
    pub headline: Option<String>,
    pub date_published: Option<String>,
    pub author_name: Option<String>,
    pub author_url: Option<String>,
    pub keywords: Vec<String>,
    pub sections: Vec<String>,
}

/// Objects visited per script at most, so a huge or hostile JSON-LD block costs bounded work.
const MAX_STEPS: usize = 10_000;

impl JsonLd {
    /// Parses each script once; a script that is not JSON is skipped.
    pub(super) fn parse(scripts: &[String]) -> JsonLd {
        let mut out = JsonLd::default();
        for raw in scripts {
            let Ok(v) = serde_json::from_str::<Value>(raw.trim()) else {
                continue;
            };
            out.take_article_fields(&v);
            out.take_longest_body(&v);
        }
        out.body = out.body.filter(|b| !b.is_empty());
        out
    }

    fn take_article_fields(&mut self, v: &Value) {
        walk(v, |x, stack| match x {
            Value::Array(a) => stack.extend(a.iter().rev()),
            Value::Object(m) => {
                if let Some(g) = m.get("@graph") {
                    stack.push(g);
                }
                let is_article = m.get("@type").is_some_and(|t| {
                    let ty = |s: &str| s.contains("Article") || s == "BlogPosting" || s == "Report";
                    match t {
                        Value::String(s) => ty(s),
                        Value::Array(a) => a.iter().any(|x| x.as_str().is_some_and(ty)),
                        _ => false,
                    }
                });
                if !is_article || self.date_published.is_some() || self.headline.is_some() {
                    return;
                }
                self.headline = m.get("headline").and_then(Value::as_str).map(collapse);
                self.date_published = m
                    .get("datePublished")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let author = match m.get("author") {
                    Some(Value::Array(a)) => a.first(),
                    other => other,
                };
                match author {
                    Some(Value::String(s)) => self.author_name = Some(s.clone()),
                    Some(Value::Object(a)) => {
                        self.author_name =
                            a.get("name").and_then(Value::as_str).map(str::to_string);
                        self.author_url = a.get("url").and_then(Value::as_str).map(str::to_string);
                    }
                    _ => {}
                }
                self.keywords = strings(m.get("keywords"), true);
                self.sections = strings(m.get("articleSection"), false);
            }
            _ => {}
        });
    }

    /// `articleBody` may sit anywhere (nested in `@graph`, `mainEntity`, ...): every object counts.
    fn take_longest_body(&mut self, v: &Value) {
        walk(v, |x, stack| match x {
            Value::Object(m) => {
                if let Some(Value::String(b)) = m.get("articleBody") {
                    let b = b.trim();
                    if self.body.as_ref().is_none_or(|x| b.len() > x.len()) {
                        self.body = Some(b.to_string());
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        });
    }
}

/// Depth-first over at most `MAX_STEPS` values; `visit` pushes the children it wants visited.
fn walk<'a>(root: &'a Value, mut visit: impl FnMut(&'a Value, &mut Vec<&'a Value>)) {
    let mut stack = vec![root];
    for _ in 0..MAX_STEPS {
        let Some(x) = stack.pop() else {
            break;
        };
        visit(x, &mut stack);
    }
}

/// A string, comma-separated string or array of strings.
fn strings(v: Option<&Value>, split_commas: bool) -> Vec<String> {
    match v {
        Some(Value::String(s)) if split_commas => s.split(',').map(str::to_string).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ld_fields_come_from_the_first_article_and_the_longest_body() {
        let scripts = vec![
            "not json".to_string(),
            r#"{"@graph":[{"@type":"WebPage","headline":"Page"},
                {"@type":["NewsArticle"],"headline":" Big  news ","datePublished":"2024-01-15",
                 "author":[{"name":"Ann","url":"/ann"}],"keywords":"a, b","articleSection":"Markets",
                 "articleBody":"short"}]}"#
                .to_string(),
            r#"{"@type":"BlogPosting","headline":"Second","mainEntity":{"articleBody":" longer body "}}"#
                .to_string(),
        ];
        let ld = JsonLd::parse(&scripts);
        assert_eq!(ld.headline.as_deref(), Some("Big news"));
        assert_eq!(ld.date_published.as_deref(), Some("2024-01-15"));
        assert_eq!(ld.author_name.as_deref(), Some("Ann"));
        assert_eq!(ld.author_url.as_deref(), Some("/ann"));
        assert_eq!(ld.keywords, vec!["a", " b"]);
        assert_eq!(ld.sections, vec!["Markets"]);
        assert_eq!(ld.body.as_deref(), Some("longer body"));
        assert_eq!(JsonLd::parse(&[]), JsonLd::default());
    }
}
