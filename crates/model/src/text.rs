//! Case-preserving word scanner with byte offsets, for the extractors that need original
//! capitalisation (entity names, key phrases) and punctuation boundaries. The sentiment model's
//! own tokenizer lowercases and stems, which is right for scoring but loses exactly that.

/// One word of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<'a> {
    /// The word as written: letters/digits, with inner hyphens kept ("Bankman-Fried").
    pub text: &'a str,
    /// Byte offsets into the scanned text.
    pub start: usize,
    pub end: usize,
    /// Written as a cashtag (`$SOL`).
    pub dollar: bool,
    /// First word of a sentence or line (its capital letter says nothing about it being a name).
    pub sentence_start: bool,
    /// Punctuation (`, ; : ( ) . ! ? "` or a line break) separates it from the previous word.
    pub boundary_before: bool,
    /// Joined to the previous word by a single dot ("Crypto.com", "U.S", "1.4"): part of one
    /// name or number.
    pub dot_joined: bool,
}

impl Word<'_> {
    /// Starts with an upper-case letter and is not all capitals ("Binance", not "SEC", not "the").
    pub fn is_capitalised(&self) -> bool {
        let mut chars = self.text.chars();
        chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase)
    }

    /// Two or more letters, all upper case, digits allowed ("SEC", "BTC", "21SHARES").
    pub fn is_acronym(&self) -> bool {
        self.text.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && !self.text.chars().any(char::is_lowercase)
    }
}

/// Splits `text` into words. Apostrophes split ("Binance's" -> "Binance", "s"), a hyphen between
/// two letters or digits is kept inside the word.
pub fn words(text: &str) -> Vec<Word<'_>> {
    let mut out: Vec<Word<'_>> = Vec::with_capacity(text.len() / 6 + 1);
    let mut start: Option<usize> = None;
    let mut sentence_start = true;
    let mut boundary = true;
    let mut prev: char = ' ';
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let next = iter.peek().map(|&(_, n)| n).unwrap_or(' ');
        if c.is_alphanumeric() || (c == '-' && start.is_some() && next.is_alphanumeric()) {
            if start.is_none() {
                start = Some(i);
            }
        } else {
            if let Some(s) = start.take() {
                out.push(Word {
                    text: &text[s..i],
                    start: s,
                    end: i,
                    dollar: s > 0 && text.as_bytes()[s - 1] == b'$',
                    sentence_start,
                    boundary_before: boundary,
                    dot_joined: out.last().is_some_and(|p| p.end + 1 == s)
                        && text.as_bytes()[s - 1] == b'.',
                });
                sentence_start = false;
                boundary = false;
            }
            match c {
                '.' | '!' | '?' => {
                    // "1.4" and "Crypto.com" stay one clause; other dots end one.
                    if c != '.' || !next.is_alphanumeric() {
                        boundary = true;
                    }
                    // "3.5" or "Crypto.com" do not end a sentence: the next char must be a space.
                    if next.is_whitespace() || next == '"' || next == '\u{201d}' {
                        sentence_start = true;
                    }
                }
                '\n' => {
                    boundary = true;
                    sentence_start = true;
                }
                ',' | ';' | ':' | '(' | ')' | '"' | '\u{201c}' | '\u{201d}' | '[' | ']' => {
                    boundary = true;
                }
                '-' | '\u{2013}' | '\u{2014}' if prev.is_whitespace() => boundary = true,
                _ => {}
            }
        }
        prev = c;
    }
    if let Some(s) = start {
        out.push(Word {
            text: &text[s..],
            start: s,
            end: text.len(),
            dollar: s > 0 && text.as_bytes()[s - 1] == b'$',
            sentence_start,
            boundary_before: boundary,
            dot_joined: out.last().is_some_and(|p| p.end + 1 == s)
                && text.as_bytes()[s - 1] == b'.',
        });
    }
    out
}

/// Function words that never start or end a key phrase or a name.
pub fn is_stop_word(lower: &str) -> bool {
    matches!(
        lower,
        "a" | "an"
            | "the"
            | "and"
            | "or"
            | "but"
            | "of"
            | "in"
            | "on"
            | "at"
            | "to"
            | "for"
            | "from"
            | "by"
            | "with"
            | "as"
            | "is"
            | "are"
            | "was"
            | "were"
            | "be"
            | "been"
            | "being"
            | "it"
            | "its"
            | "this"
            | "that"
            | "these"
            | "those"
            | "which"
            | "who"
            | "whom"
            | "whose"
            | "what"
            | "when"
            | "where"
            | "why"
            | "how"
            | "will"
            | "would"
            | "could"
            | "should"
            | "can"
            | "may"
            | "might"
            | "must"
            | "has"
            | "have"
            | "had"
            | "do"
            | "does"
            | "did"
            | "not"
            | "no"
            | "s"
            | "t"
            | "he"
            | "she"
            | "they"
            | "we"
            | "you"
            | "i"
            | "his"
            | "her"
            | "their"
            | "our"
            | "your"
            | "my"
            | "him"
            | "them"
            | "us"
            | "me"
            | "there"
            | "here"
            | "than"
            | "then"
            | "so"
            | "if"
            | "into"
            | "onto"
            | "over"
            | "under"
            | "about"
            | "after"
            | "before"
            | "since"
            | "until"
            | "while"
            | "amid"
            | "also"
            | "just"
            | "more"
            | "most"
            | "less"
            | "very"
            | "all"
            | "any"
            | "some"
            | "such"
            | "other"
            | "only"
            | "own"
            | "same"
            | "said"
            | "says"
            | "say"
            | "according"
            | "per"
            | "via"
            | "up"
            | "down"
            | "out"
            | "off"
            | "new"
            | "now"
            | "still"
            | "yet"
            | "even"
            | "both"
            | "each"
            | "every"
            | "between"
            | "against"
            | "during"
            | "through"
            | "because"
            | "due"
            | "however"
            | "although"
            | "though"
            | "whether"
            | "around"
            | "nearly"
            | "almost"
            | "like"
            | "last"
            | "next"
            | "first"
            | "year"
            | "week"
            | "day"
            | "today"
            | "yesterday"
            | "tomorrow"
            | "monday"
            | "tuesday"
            | "wednesday"
            | "thursday"
            | "friday"
            | "saturday"
            | "sunday"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_cashtags_and_boundaries() {
        let w = words("Binance's CEO said $SOL rose. Crypto.com, Bankman-Fried");
        let texts: Vec<&str> = w.iter().map(|w| w.text).collect();
        assert_eq!(
            texts,
            [
                "Binance",
                "s",
                "CEO",
                "said",
                "SOL",
                "rose",
                "Crypto",
                "com",
                "Bankman-Fried"
            ]
        );
        assert!(w[0].sentence_start && !w[2].sentence_start);
        assert!(w[4].dollar);
        assert!(w[6].sentence_start && w[6].boundary_before);
        assert!(!w[7].sentence_start && !w[7].boundary_before && w[7].dot_joined);
        assert!(!w[6].dot_joined);
        assert!(w[8].boundary_before);
        assert!(w[0].is_capitalised() && w[2].is_acronym() && !w[3].is_capitalised());
        assert_eq!(&"Binance's"[w[0].start..w[0].end], "Binance");
    }
}
