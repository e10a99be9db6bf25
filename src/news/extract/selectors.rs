//! Extraction with a source's configured CSS selectors (`news_sources.selectors`), falling back
//! per field to the general extractor when a selector is missing, invalid or matches nothing.

use super::arena::Arena;
use super::prepare::parse;
use super::text::{Out, collapse};
use super::{Extracted, Method, find_title, generic};
use crate::domain::news::SourceSelectors;
use scraper::{Html, Selector};

/// Extracts with source-specific CSS selectors, falling back per field to the
/// generic extractor when a selector is missing, invalid or matches nothing.
pub fn extract_with_selectors(html: &str, selectors: &SourceSelectors) -> Extracted {
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
