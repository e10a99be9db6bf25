//! Tokenizer, light stemmer and sentence splitter for English financial news.
//!
//! Hand-written rather than regex-based because the model scores every sentence of every
//! article: one pass over the bytes with no backtracking keeps scoring in the microsecond range.
//! The stemmer is deliberately crude: it only has to map the surface forms in the lexicon and in
//! text to the *same* key (both sides go through [`stem`]), not to produce linguistic roots.

/// What a token is; numbers and years are kept apart because only amounts take part in the
/// "rose to X from Y" comparisons, while years ("in 2009 from 2008") would corrupt them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenKind {
    /// A word (hyphens removed, lowercased).
    Word,
    /// An amount; `value` holds it with its scale (mn, bn, k) applied.
    Number { percent: bool },
    /// A bare integer between 1900 and 2100.
    Year,
    /// Clause punctuation (`,` `;` `:` `(` `)` `.` `!` `?`): bounds negation and metric windows.
    Clause,
}

/// One token: the lowercase surface (for evidence) and its stem (for lookups and features).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub surface: String,
    pub stem: String,
    pub value: f64,
}

impl Token {
    pub fn is_word(&self) -> bool {
        self.kind == TokenKind::Word
    }
    pub fn is_clause(&self) -> bool {
        self.kind == TokenKind::Clause
    }
    pub fn is_amount(&self) -> bool {
        matches!(self.kind, TokenKind::Number { .. })
    }
}

/// Maps inflected forms to a shared key: `hacked`/`hacks`/`hacking` -> `hack`,
/// `depegged`/`depegs` -> `depeg`, `increase`/`increased`/`increasing` -> `increas`.
pub fn stem(word: &str) -> String {
    let mut w: &str = word;
    let mut owned: Option<String> = None;
    let n = w.len();
    if !w.is_ascii() || n <= 3 {
        return word.to_string();
    }
    let mut stripped_verb = false;
    if n > 4 && (w.ends_with("ies") || w.ends_with("ied")) {
        owned = Some(format!("{}y", &w[..n - 3]));
    } else if w.ends_with("sses") {
        w = &w[..n - 2];
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w = &w[..n - 1];
    } else if n > 5 && w.ends_with("ing") {
        w = &w[..n - 3];
        stripped_verb = true;
    } else if n > 4 && w.ends_with("ed") {
        w = &w[..n - 2];
        stripped_verb = true;
    }
    if let Some(o) = owned {
        return o;
    }
    let b = w.as_bytes();
    let m = b.len();
    // Undouble after a stripped suffix ("dropped" -> "drop"), or drop a silent final "e"
    // ("increase" -> "increas", matching "increased").
    let undouble =
        stripped_verb && m >= 3 && b[m - 1] == b[m - 2] && !matches!(b[m - 1], b'l' | b's' | b'z');
    let silent_e = m > 3 && b[m - 1] == b'e' && b[m - 2] != b'e';
    if undouble || silent_e {
        w = &w[..m - 1];
    }
    w.to_string()
}

fn scale_of(word: &str) -> Option<f64> {
    match word {
        "m" | "mn" | "mln" | "million" | "mio" => Some(1e6),
        "bn" | "b" | "bln" | "billion" => Some(1e9),
        "k" | "thousand" => Some(1e3),
        _ => None,
    }
}

/// Splits `text` into tokens. `n't` becomes a separate `not`, `'s` is dropped, hyphens inside a
/// word are removed (`de-peg` -> `depeg`, `pre-tax` -> `pretax`), `%` marks the preceding amount.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(text.len() / 5 + 4);
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                cur.push(l);
            }
        } else if c == '-' && !cur.is_empty() && next.is_alphanumeric() {
            // joined: nothing to push
        } else if (c == '.' || c == ',')
            && cur.chars().last().is_some_and(|l| l.is_ascii_digit())
            && next.is_ascii_digit()
        {
            if c == '.' {
                cur.push('.');
            }
        } else if c == '\'' || c == '\u{2019}' {
            if (next == 't' || next == 'T') && cur.ends_with('n') {
                cur.pop();
                flush(&mut cur, &mut out);
                push_word(&mut out, "not");
                i += 1;
            } else if (next == 's' || next == 'S')
                && !chars.get(i + 2).copied().unwrap_or(' ').is_alphanumeric()
            {
                flush(&mut cur, &mut out);
                i += 1;
            } else {
                flush(&mut cur, &mut out);
            }
        } else if c == '%' {
            flush(&mut cur, &mut out);
            if let Some(last) = out.last_mut()
                && let TokenKind::Number { .. } = last.kind
            {
                last.kind = TokenKind::Number { percent: true };
            }
        } else if matches!(c, ',' | ';' | ':' | '(' | ')' | '.' | '!' | '?') {
            flush(&mut cur, &mut out);
            out.push(Token {
                kind: TokenKind::Clause,
                surface: c.to_string(),
                stem: c.to_string(),
                value: 0.0,
            });
        } else if c == ' '
            && next == '.'
            && cur.chars().last().is_some_and(|l| l.is_ascii_digit())
            && chars.get(i + 2).is_some_and(|d| d.is_ascii_digit())
        {
            // "EUR9 .6 m": a decimal split by a stray space in some wire copy.
            cur.push('.');
            i += 2;
            continue;
        } else {
            flush(&mut cur, &mut out);
        }
        i += 1;
    }
    flush(&mut cur, &mut out);
    out
}

fn push_word(out: &mut Vec<Token>, w: &str) {
    out.push(Token {
        kind: TokenKind::Word,
        surface: w.to_string(),
        stem: stem(w),
        value: 0.0,
    });
}

fn flush(cur: &mut String, out: &mut Vec<Token>) {
    if cur.is_empty() {
        return;
    }
    if cur.bytes().any(|b| b.is_ascii_digit()) {
        if let Some(tok) = parse_number(cur) {
            out.push(tok);
        } else {
            push_word(out, cur);
        }
    } else {
        if let Some(scale) = scale_of(cur)
            && let Some(last) = out.last_mut()
            && last.is_amount()
        {
            last.value *= scale;
        }
        push_word(out, cur);
    }
    cur.clear();
}

/// `131`, `13.1`, `eur131m`, `1200` -> amounts; `2009` -> year; `q1`, `h2`, `3g` -> words.
fn parse_number(s: &str) -> Option<Token> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let prefix = &s[..start];
    let rest = &s[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let digits = &rest[..end];
    let suffix = &rest[end..];
    if !prefix.is_empty() && !matches!(prefix, "eur" | "usd" | "gbp" | "sek" | "us" | "rmb" | "mn")
    {
        return None;
    }
    let mut value: f64 = digits.parse().ok()?;
    if !suffix.is_empty() {
        value *= scale_of(suffix)?;
    }
    let is_year = suffix.is_empty()
        && prefix.is_empty()
        && !digits.contains('.')
        && (1900.0..=2100.0).contains(&value);
    Some(Token {
        kind: if is_year {
            TokenKind::Year
        } else {
            TokenKind::Number { percent: false }
        },
        surface: s.to_string(),
        stem: if is_year { "<year>" } else { "<num>" }.to_string(),
        value,
    })
}

const ABBREVIATIONS: &[&str] = &[
    "inc", "ltd", "corp", "co", "mr", "mrs", "ms", "dr", "st", "vs", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "no", "approx", "est", "plc", "oyj",
];

/// Splits an article into sentences: at line breaks, and at `.`/`!`/`?` followed by whitespace
/// and a capital, digit or quote, except after common abbreviations and single initials.
/// Returns byte ranges into `text` so no text is copied.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let mut cut_at: Option<usize> = None;
        if b == b'\n' {
            cut_at = Some(i);
        } else if matches!(b, b'.' | b'!' | b'?') {
            let mut j = i + 1;
            while j < bytes.len() && matches!(bytes[j], b'"' | b'\'' | b')') {
                j += 1;
            }
            let ws_after = j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n');
            if ws_after {
                let mut k = j;
                while k < bytes.len() && matches!(bytes[k], b' ' | b'\t' | b'\r') {
                    k += 1;
                }
                let opens = k >= bytes.len()
                    || bytes[k].is_ascii_uppercase()
                    || bytes[k].is_ascii_digit()
                    || matches!(bytes[k], b'"' | b'\n' | b'(' | b'$')
                    || bytes[k] >= 0x80;
                if opens && !(b == b'.' && ends_with_abbreviation(&text[start..i])) {
                    cut_at = Some(j);
                }
            }
        }
        if let Some(end) = cut_at {
            let piece = text[start..end].trim();
            if !piece.is_empty() {
                out.push(piece);
            }
            start = end;
        }
        i += 1;
    }
    let piece = text[start..].trim();
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

fn ends_with_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    if word.len() == 1 && word.chars().all(|c| c.is_alphabetic()) {
        return true;
    }
    let lower = word.to_ascii_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_collapse_inflections() {
        for (a, b) in [
            ("hacked", "hack"),
            ("hacks", "hacking"),
            ("depegged", "depegs"),
            ("increase", "increased"),
            ("increases", "increasing"),
            ("liquidations", "liquidation"),
            ("rallied", "rallies"),
            ("dropped", "drop"),
            ("losses", "loss"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} vs {b}");
        }
    }

    #[test]
    fn numbers_scales_and_negation() {
        let t = tokenize("Profit rose to EUR 13.1 mn from EUR131m in 2009, but didn't beat 5%.");
        let amounts: Vec<f64> = t
            .iter()
            .filter(|t| t.is_amount())
            .map(|t| t.value)
            .collect();
        assert_eq!(amounts, vec![13.1e6, 131e6, 5.0]);
        assert!(t.iter().any(|t| t.kind == TokenKind::Year));
        assert!(t.iter().any(|t| t.stem == "not"));
        assert!(t.iter().any(|t| t.stem == "did"));
    }

    #[test]
    fn sentence_split_respects_abbreviations_and_decimals() {
        let s = split_sentences("Acme Inc. sold 1.5 mn units. Sales rose!\nNew line here");
        assert_eq!(
            s,
            vec![
                "Acme Inc. sold 1.5 mn units.",
                "Sales rose!",
                "New line here"
            ]
        );
    }
}
