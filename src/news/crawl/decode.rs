//! From the bytes of a response to the text of a page, as a browser reads them: the encoding
//! comes from a byte order mark, the Content-Type charset or a `<meta>` in the first KiB, and is
//! resolved through the WHATWG label table (`encoding_rs`), so every label a browser knows works.
//! A body that is not text at all (an image, an archive, random bytes served as `text/html`) is
//! refused with the reason, rather than being decoded into a garbage "article".

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252, X_USER_DEFINED};

/// How much of the page the `<meta>` prescan reads (the HTML standard's limit).
const PRESCAN_BYTES: usize = 1024;
/// How many decoded characters the text check samples: enough to be sure, cheap on huge pages.
const SAMPLE_CHARS: usize = 64 * 1024;

/// Why a body was refused as not being text. The message is what an operator sees on the
/// FAILED raw article and in `tradepipe normalize`'s error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotText {
    #[error("the body is {0} data, not text")]
    BinaryFormat(&'static str),
    #[error("the body ({encoding}) is not text: a NUL character at character {at}")]
    Nul { encoding: &'static str, at: usize },
    #[error(
        "the body ({encoding}) is not text: {bad} of its first {sampled} characters are control \
         or undecodable characters"
    )]
    Undecodable {
        encoding: &'static str,
        bad: usize,
        sampled: usize,
    },
}

/// Decodes a response body to text, or says why it is not text.
///
/// The encoding is, in the order browsers use: a byte order mark (UTF-8, UTF-16LE/BE); the
/// `charset` of `content_type`; a `<meta charset>` or `<meta http-equiv="Content-Type">` in the
/// first KiB; else UTF-8. Labels are WHATWG labels (`latin1`, `sjis`, `gb2312`, `cp1251`, ...);
/// an unknown label is ignored. Invalid sequences become U+FFFD: a few of them in a page are kept,
/// a body made mostly of them is refused (see [`check_text`]).
pub fn decode_body(bytes: &[u8], content_type: Option<&str>) -> Result<String, NotText> {
    if let Some(format) = binary_format(bytes) {
        return Err(NotText::BinaryFormat(format));
    }
    let declared = content_type
        .and_then(charset_param)
        .and_then(Encoding::for_label)
        .or_else(|| prescan_meta(&bytes[..bytes.len().min(PRESCAN_BYTES)]));
    // `decode` sniffs the BOM first and strips it: a BOM overrides any declaration.
    let (text, used, _had_errors) = declared.unwrap_or(UTF_8).decode(bytes);
    check_text(&text, used.name())?;
    Ok(text.into_owned())
}

/// Refuses text that is really binary data read as characters: any NUL, or more than one in ten
/// sampled characters being a control character (other than whitespace) or U+FFFD. Real pages,
/// even mis-declared Latin ones, stay far below that; random bytes are far above it. `encoding`
/// names what the text was decoded from, for the message.
pub(crate) fn check_text(text: &str, encoding: &'static str) -> Result<(), NotText> {
    let mut bad = 0usize;
    let mut sampled = 0usize;
    for (i, c) in text.chars().take(SAMPLE_CHARS).enumerate() {
        sampled += 1;
        match c {
            '\0' => return Err(NotText::Nul { encoding, at: i }),
            '\t' | '\n' | '\r' | '\u{c}' => {}
            '\u{fffd}' => bad += 1,
            c if c.is_control() => bad += 1,
            _ => {}
        }
    }
    // A handful of bad characters in a tiny body says little; a tenth of a real sample does.
    if bad >= 4 && bad * 10 > sampled {
        return Err(NotText::Undecodable {
            encoding,
            bad,
            sampled,
        });
    }
    Ok(())
}

/// The format of a body that starts with the magic number of a common binary format.
fn binary_format(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"\x00\x00\x01\x00", "ICO image"),
        (b"II*\x00", "TIFF image"),
        (b"MM\x00*", "TIFF image"),
        (b"%PDF-", "PDF document"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"\x1f\x8b", "gzip archive"),
        (b"\xfd7zXZ\x00", "xz archive"),
        (b"(\xb5/\xfd", "zstd archive"),
        (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
        (b"Rar!\x1a\x07", "RAR archive"),
        (b"\x7fELF", "ELF executable"),
        (b"\x00asm", "WebAssembly module"),
        (b"wOFF", "WOFF font"),
        (b"wOF2", "WOFF2 font"),
        (b"OggS", "Ogg media"),
        (b"ID3\x03\x00", "MP3 audio"),
        (b"ID3\x04\x00", "MP3 audio"),
        (b"\x1aE\xdf\xa3", "Matroska/WebM media"),
    ];
    if let Some((_, format)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(format);
    }
    // RIFF containers (WebP, WAV, AVI) and ISO media (MP4, MOV, AVIF, HEIC) carry their type
    // after a length field.
    match (bytes.get(..4), bytes.get(4..8), bytes.get(8..12)) {
        (Some(b"RIFF"), _, Some(b"WEBP")) => Some("WebP image"),
        (Some(b"RIFF"), _, Some(_)) => Some("RIFF media"),
        (_, Some(b"ftyp"), _) => Some("ISO media (MP4/MOV/AVIF/HEIC)"),
        _ => None,
    }
}

/// The value of a `charset=` parameter in a Content-Type value or a meta `content` attribute.
fn charset_param(s: &str) -> Option<&[u8]> {
    let bytes = s.as_bytes();
    let at = s.to_ascii_lowercase().find("charset")? + "charset".len();
    let rest = trim_ascii_ws(&bytes[at..]);
    let rest = trim_ascii_ws(rest.strip_prefix(b"=")?);
    let (value, _) = match rest.first() {
        Some(&q @ (b'"' | b'\'')) => split_at_byte(&rest[1..], |b| b == q),
        _ => split_at_byte(rest, |b| b == b';' || b.is_ascii_whitespace()),
    };
    (!value.is_empty()).then_some(value)
}

/// The encoding a `<meta charset>` or `<meta http-equiv="content-type" content="...">` in `head`
/// declares, as the HTML prescan resolves it (a declared UTF-16 means UTF-8: a page that can
/// be read as ASCII to find the tag is not UTF-16; x-user-defined means windows-1252).
fn prescan_meta(head: &[u8]) -> Option<&'static Encoding> {
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = find(&lower[from..], b"<meta") {
        let start = from + i + b"<meta".len();
        from = start;
        // `<metadata>` is not a meta tag.
        if !lower
            .get(start)
            .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/')
        {
            continue;
        }
        let (attrs, end) = attributes(&lower[start..]);
        from = start + end;
        let value = |name: &str| {
            attrs
                .iter()
                .find(|(n, _)| *n == name.as_bytes())
                .map(|(_, v)| *v)
        };
        let label = value("charset").or_else(|| {
            value("http-equiv")
                .filter(|v| *v == b"content-type")
                .and(value("content"))
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(charset_param)
        });
        if let Some(encoding) = label.and_then(Encoding::for_label) {
            return Some(match encoding {
                e if e == UTF_16LE || e == UTF_16BE => UTF_8,
                e if e == X_USER_DEFINED => WINDOWS_1252,
                e => e,
            });
        }
    }
    None
}

/// A tag attribute: name and value, lower case.
type Attribute<'a> = (&'a [u8], &'a [u8]);

/// The attributes of a tag whose name has been read, up to its `>`, and where that `>` is: a
/// simple form of the HTML standard's "get an attribute" (quoted and unquoted values).
fn attributes(tag: &[u8]) -> (Vec<Attribute<'_>>, usize) {
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        while tag
            .get(i)
            .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/')
        {
            i += 1;
        }
        match tag.get(i) {
            None => return (attrs, tag.len()),
            Some(b'>') => return (attrs, i),
            Some(_) => {}
        }
        let name_start = i;
        while tag
            .get(i)
            .is_some_and(|&b| !(b.is_ascii_whitespace() || matches!(b, b'=' | b'>' | b'/')))
        {
            i += 1;
        }
        let name = &tag[name_start..i];
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if tag.get(i) != Some(&b'=') {
            attrs.push((name, &tag[i..i]));
            continue;
        }
        i += 1;
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let value = match tag.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let (v, _) = split_at_byte(&tag[i + 1..], |b| b == q);
                i += v.len() + 2;
                v
            }
            _ => {
                let (v, _) = split_at_byte(&tag[i..], |b| b.is_ascii_whitespace() || b == b'>');
                i += v.len();
                v
            }
        };
        attrs.push((name, value));
        i = i.min(tag.len());
    }
}

fn trim_ascii_ws(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

fn split_at_byte(b: &[u8], stop: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    b.split_at(b.iter().position(|&c| stop(c)).unwrap_or(b.len()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn random_bytes(n: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; n];
        rand::rngs::StdRng::seed_from_u64(10).fill_bytes(&mut bytes);
        bytes
    }

    #[test]
    fn latin_labels_read_as_windows_1252_and_utf8_stays_the_default() {
        let ok = |bytes: &[u8], ct| decode_body(bytes, ct).unwrap();
        assert_eq!(
            ok(b"caf\xe9", Some("text/html; charset=ISO-8859-1")),
            "café"
        );
        assert_eq!(
            ok(b"\x93q\x94", Some("text/html; charset=windows-1252")),
            "“q”"
        );
        assert_eq!(
            ok(b"<meta charset=\"latin1\">\xe9", Some("text/html")),
            "<meta charset=\"latin1\">é"
        );
        assert_eq!(ok(b"a\xffb", None), "a\u{fffd}b");
        assert_eq!(ok("\u{feff}x".as_bytes(), None), "x");
        // An unknown label is ignored, as browsers do.
        assert_eq!(ok("é".as_bytes(), Some("text/html; charset=no-such")), "é");
    }

    #[test]
    fn charset_comes_from_bom_then_header_then_meta() {
        let ok = |bytes: &[u8], ct| decode_body(bytes, ct).unwrap();
        // Header beats meta.
        assert_eq!(
            ok(
                b"<meta charset=\"utf-8\">\xe9",
                Some("text/html;charset=\"cp1252\"")
            ),
            "<meta charset=\"utf-8\">é"
        );
        // The http-equiv form, single-quoted, with other attributes around it.
        let page = b"<html><head><META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=koi8-r' /></head>\xf0\xd2\xc9";
        assert!(ok(page, Some("text/html")).ends_with("</head>При"));
        // A BOM beats a header that says otherwise.
        assert_eq!(
            ok(b"\xef\xbb\xbf\xc3\xa9", Some("text/html; charset=latin1")),
            "é"
        );
        // A meta that declares UTF-16 in an ASCII-readable page means UTF-8.
        assert_eq!(
            ok("<meta charset=utf-16>é".as_bytes(), None),
            "<meta charset=utf-16>é"
        );
        // charset= in the body text, outside a meta tag, declares nothing.
        assert_eq!(
            ok("<p>charset=latin1 é</p>".as_bytes(), None),
            "<p>charset=latin1 é</p>"
        );
    }

    #[test]
    fn binary_formats_are_refused_by_their_magic_number() {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend(random_bytes(4096));
        assert_eq!(
            decode_body(&png, Some("text/html")),
            Err(NotText::BinaryFormat("PNG image"))
        );
        assert_eq!(
            decode_body(b"%PDF-1.7\n%\xe2\xe3", None),
            Err(NotText::BinaryFormat("PDF document"))
        );
        assert_eq!(
            decode_body(b"RIFF\x10\x00\x00\x00WEBPVP8 ", None),
            Err(NotText::BinaryFormat("WebP image"))
        );
        let err = decode_body(b"\x1f\x8b\x08\x00", None).unwrap_err();
        assert_eq!(err.to_string(), "the body is gzip archive data, not text");
    }

    #[test]
    fn random_bytes_are_refused_in_any_declared_charset() {
        let bytes = random_bytes(100_000);
        for ct in [
            None,
            Some("text/html; charset=windows-1252"),
            Some("text/html; charset=shift_jis"),
        ] {
            let err = decode_body(&bytes, ct).unwrap_err();
            assert!(matches!(err, NotText::Nul { .. }), "{ct:?}: {err}");
        }
        // Without NULs, the share of control and undecodable characters gives it away.
        let no_nul: Vec<u8> = bytes.iter().map(|&b| b.max(1)).collect();
        let err = decode_body(&no_nul, None).unwrap_err();
        assert!(
            matches!(
                err,
                NotText::Undecodable {
                    encoding: "UTF-8",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("control or undecodable"), "{err}");
    }

    #[test]
    fn a_few_bad_bytes_in_a_real_page_are_kept() {
        let mut page = b"<html><body><p>Bitcoin \xc3\x28 price \xe2\x82 broken".to_vec();
        page.extend(b"<p>".repeat(100));
        page.extend(b"deep text \x80\x81 \x0b</p></body></html>");
        let text = decode_body(&page, Some("text/html")).unwrap();
        assert_eq!(text.matches('\u{fffd}').count(), 4, "{text}");
    }
}
