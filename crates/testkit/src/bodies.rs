//! Response bodies for the decoding tests, generated rather than committed: bytes that are not
//! text (random bytes, a real PNG) and small article pages in non-UTF-8 charsets.
//!
//! The page texts are Article 1 of the Universal Declaration of Human Rights in the United
//! Nations' official Japanese, Chinese and Russian translations (OHCHR, "Universal Declaration of
//! Human Rights" translations page, https://www.ohchr.org/en/human-rights/universal-declaration/
//! universal-declaration-human-rights/translations): real text in each language, freely usable.

use encoding_rs::Encoding;
use rand::{RngCore, SeedableRng};
use std::io::Write;

/// `n` random bytes, the same on every run.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(10).fill_bytes(&mut bytes);
    bytes
}

/// A valid `width` x `height` 8-bit RGB PNG (signature, IHDR, zlib IDAT, IEND, with CRCs) of
/// noise, as an image server would send it.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        // invariant: callers make images of a few kB; a chunk is far below 4 GiB.
        let len = u32::try_from(data.len()).expect("PNG chunk under 4 GiB");
        out.extend(len.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8 bits per channel, truecolour, deflate, no filter, no interlace
    let noise = random_bytes((width * height * 3) as usize);
    let mut scanlines = Vec::new();
    for row in noise.chunks(width as usize * 3) {
        scanlines.push(0); // filter type: none
        scanlines.extend(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // invariant: the encoder writes into a Vec, which cannot fail.
    z.write_all(&scanlines).expect("compress in memory");
    let idat = z.finish().expect("compress in memory");
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// An article page in a charset other than UTF-8, and how a server would declare it.
pub struct CharsetPage {
    pub charset: &'static str,
    /// The text of the article, as the decoder must give it back.
    pub text: &'static str,
    /// `<html lang>`.
    pub lang: &'static str,
    pub bytes: Vec<u8>,
    /// The Content-Type header the page is served with.
    pub content_type: &'static str,
}

const JAPANESE: &str = "すべての人間は、生れながらにして自由であり、かつ、尊厳と権利とについて平等である。\
    人間は、理性と良心とを授けられており、互いに同胞の精神をもって行動しなければならない。";
const CHINESE: &str =
    "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。";
const RUSSIAN: &str = "Все люди рождаются свободными и равными в своем достоинстве и правах. \
    Они наделены разумом и совестью и должны поступать в отношении друг друга в духе братства.";

fn html(lang: &str, head: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head>{head}<title>UDHR 1</title></head>\
         <body><article><h1>UDHR 1</h1><p>{text}</p></article></body></html>"
    )
}

fn encode(label: &str, page: &str) -> Vec<u8> {
    // invariant: the labels are the fixed ones of `charset_pages` below, all WHATWG labels.
    let encoding = Encoding::for_label(label.as_bytes()).expect("a WHATWG label");
    let (bytes, _, unmappable) = encoding.encode(page);
    assert!(!unmappable, "{label} can encode the page");
    bytes.into_owned()
}

/// Shift_JIS declared by `<meta charset>`, GBK by the Content-Type header, windows-1251 by
/// `<meta http-equiv>`, and UTF-16LE by its byte order mark alone.
pub fn charset_pages() -> Vec<CharsetPage> {
    let utf16le = {
        let mut b = vec![0xff, 0xfe];
        b.extend(
            html("ja", "", JAPANESE)
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        b
    };
    vec![
        CharsetPage {
            charset: "Shift_JIS",
            text: JAPANESE,
            lang: "ja",
            bytes: encode(
                "shift_jis",
                &html("ja", "<meta charset=\"Shift_JIS\">", JAPANESE),
            ),
            content_type: "text/html",
        },
        CharsetPage {
            charset: "GBK",
            text: CHINESE,
            lang: "zh",
            bytes: encode("gbk", &html("zh", "", CHINESE)),
            content_type: "text/html; charset=GBK",
        },
        CharsetPage {
            charset: "windows-1251",
            text: RUSSIAN,
            lang: "ru",
            bytes: encode(
                "windows-1251",
                &html(
                    "ru",
                    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">",
                    RUSSIAN,
                ),
            ),
            content_type: "text/html",
        },
        CharsetPage {
            charset: "UTF-16LE",
            text: JAPANESE,
            lang: "ja",
            bytes: utf16le,
            content_type: "text/html",
        },
    ]
}
