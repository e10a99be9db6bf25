//! The article's language: statistical detection on the body when it is reliable, else the
//! page's declared `<html lang>`.

use super::article::count_words;

/// Language of the body by statistical detection when reliable, else the
/// page's `<html lang>`; the declared `lang` is often a site-wide default. Either way the code
/// has one form: ISO 639-1 where the language has one, else ISO 639-3 (an unknown declared code
/// gives `None`).
pub(super) fn detect_language(body: &str, html_lang: Option<&str>) -> Option<String> {
    let sample: String = body.chars().take(3000).collect();
    if let Some(info) = whatlang::detect(&sample)
        && info.is_reliable()
        && count_words(&sample) >= 5
    {
        return Some(language_code(info.lang()).to_string());
    }
    let primary = html_lang?
        .split(['-', '_'])
        .next()?
        .trim()
        .to_ascii_lowercase();
    let lang = match primary.len() {
        2 => isolang::Language::from_639_1(&primary),
        3 => from_639_3(&primary),
        _ => None,
    }?;
    Some(preferred_code(lang).to_string())
}

/// The code of a detected language: ISO 639-1 where one exists, else ISO 639-3.
fn language_code(lang: whatlang::Lang) -> &'static str {
    // Every whatlang language is in the ISO 639-3 table (tested); its own code is the fallback.
    from_639_3(lang.code()).map_or(lang.code(), preferred_code)
}

/// ISO 639-1 where the language has one, else ISO 639-3.
fn preferred_code(lang: isolang::Language) -> &'static str {
    lang.to_639_1().unwrap_or(lang.to_639_3())
}

/// The language of an ISO 639-3 code. An individual language whose ISO 639-1 code belongs to its
/// macrolanguage is read as that macrolanguage (SIL's iso-639-3-macrolanguages table, for the
/// codes whatlang reports): Mandarin `cmn` is Chinese `zho` ("zh"), Iranian Persian `pes` is
/// Persian `fas` ("fa").
fn from_639_3(code: &str) -> Option<isolang::Language> {
    let macrolanguage = match code {
        "cmn" => "zho",
        "pes" => "fas",
        other => other,
    };
    isolang::Language::from_639_3(macrolanguage)
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
        // A declared code comes out in the same form as a detected one.
        assert_eq!(detect_language("", Some("eng")).as_deref(), Some("en"));
        assert_eq!(detect_language("", Some("cmn-Hans")).as_deref(), Some("zh"));
        assert_eq!(detect_language("", Some("haw")).as_deref(), Some("haw"));
        assert_eq!(detect_language("", Some("zz")), None);
    }

    #[test]
    fn every_detected_language_has_one_code_form() {
        assert_eq!(whatlang::Lang::all().len(), 70);
        for &lang in whatlang::Lang::all() {
            let code = language_code(lang);
            let iso = match code.len() {
                2 => isolang::Language::from_639_1(code),
                3 => isolang::Language::from_639_3(code).filter(|l| l.to_639_1().is_none()),
                _ => None,
            };
            assert!(
                iso.is_some() && code.bytes().all(|b| b.is_ascii_lowercase()),
                "{lang:?} ({}) -> {code:?}: not ISO 639-1, nor 639-3 without a 639-1",
                lang.code()
            );
        }
        let code = |l| language_code(l);
        use whatlang::Lang;
        assert_eq!(code(Lang::Eng), "en");
        assert_eq!(code(Lang::Rus), "ru");
        assert_eq!(code(Lang::Cmn), "zh");
        assert_eq!(code(Lang::Jpn), "ja");
        assert_eq!(code(Lang::Pes), "fa");
        assert_eq!(code(Lang::Nob), "nb");
        // Languages the old 29-entry table passed through as ISO 639-3.
        assert_eq!(code(Lang::Bul), "bg");
        assert_eq!(code(Lang::Cym), "cy");
        assert_eq!(code(Lang::Epo), "eo");
    }
}
