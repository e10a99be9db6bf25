//! The article's language: statistical detection on the body when it is reliable, else the
//! page's declared `<html lang>`.

use super::article::count_words;

/// Language of the body by statistical detection when reliable, else the
/// page's `<html lang>`; the declared `lang` is often a site-wide default.
pub(super) fn detect_language(body: &str, html_lang: Option<&str>) -> Option<String> {
    let sample: String = body.chars().take(3000).collect();
    if let Some(info) = whatlang::detect(&sample)
        && info.is_reliable()
        && count_words(&sample) >= 5
    {
        return Some(iso639_1(info.lang().code()).to_string());
    }
    html_lang
        .and_then(|l| l.split(['-', '_']).next())
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
}

fn iso639_1(code3: &str) -> &str {
    match code3 {
        "eng" => "en",
        "spa" => "es",
        "fra" => "fr",
        "deu" => "de",
        "ita" => "it",
        "por" => "pt",
        "nld" => "nl",
        "rus" => "ru",
        "ukr" => "uk",
        "pol" => "pl",
        "tur" => "tr",
        "ara" => "ar",
        "cmn" => "zh",
        "jpn" => "ja",
        "kor" => "ko",
        "vie" => "vi",
        "ind" => "id",
        "hin" => "hi",
        "swe" => "sv",
        "dan" => "da",
        "nob" => "no",
        "fin" => "fi",
        "ces" => "cs",
        "ell" => "el",
        "heb" => "he",
        "tha" => "th",
        "ron" => "ro",
        "hun" => "hu",
        "pes" => "fa",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_detection_and_fallback() {
        let en = "The central bank raised interest rates again on Tuesday, surprising analysts who expected a pause.";
        assert_eq!(detect_language(en, Some("de")).as_deref(), Some("en"));
        let es = "El banco central volvió a subir los tipos de interés el martes, sorprendiendo a los analistas.";
        assert_eq!(detect_language(es, None).as_deref(), Some("es"));
        assert_eq!(detect_language("", Some("fr-FR")).as_deref(), Some("fr"));
        assert_eq!(detect_language("", Some("??")), None);
    }
}
