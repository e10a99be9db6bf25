//! Pages in the charsets of the world's big non-Latin news markets decode to their real text, and
//! that text is the body the normalizer extracts: the crawler's decoder (`decode_body`, as a
//! response is decoded) and `build_article` (as the NormalizerActor normalizes the stored page).

use tradepipe::news::crawl::decode::decode_body;
use tradepipe::news::normalize::{build_article, raw_from_file};
use tradepipe_model::aliases::SymbolAliases;
use tradepipe_testkit::bodies::charset_pages;

#[test]
fn shift_jis_gbk_windows_1251_and_utf16_pages_decode_to_their_text_and_body() {
    let pages = charset_pages();
    assert_eq!(pages.len(), 4);
    for page in pages {
        let html = decode_body(&page.bytes, Some(page.content_type))
            .unwrap_or_else(|e| panic!("{}: {e}", page.charset));
        assert!(
            html.contains(page.text),
            "{}: decoded text differs from the original: {html}",
            page.charset
        );
        assert!(!html.contains('\u{fffd}'), "{}: {html}", page.charset);

        let now = chrono::Utc::now();
        let url = format!("https://news.example.com/{}", page.charset);
        let raw = raw_from_file(html, &url, "", now).expect("a valid URL");
        let article = build_article(&raw, None, &SymbolAliases::default_crypto(), now)
            .unwrap_or_else(|e| panic!("{}: {e}", page.charset));
        assert!(
            article.body.contains(page.text),
            "{}: body {:?}",
            page.charset,
            article.body
        );
        assert_eq!(article.title, "UDHR 1", "{}", page.charset);
        assert_eq!(
            article.language.as_deref(),
            Some(page.lang),
            "{}",
            page.charset
        );
    }
}
