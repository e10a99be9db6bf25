//! Causal signals: sentence patterns by which market news states why something moved ("X fell
//! after Y", "X rallied on the back of Y", "Y sparked a sell-off").
//!
//! Each pattern is a connective with an orientation (is the cause after it or before it) and a
//! strength (how explicitly it asserts causation: "due to" does, "amid" only juxtaposes). The
//! effect is normalised to "price increase"/"price decrease" (or "<metric> increase", e.g. for
//! inflows) when it contains a movement verb, because that is what downstream aggregation needs;
//! otherwise the effect clause is kept as written.

use crate::hash::FastSet;
use crate::hash::round4;
use crate::text::{Word, is_stop_word, words};
use crate::tokenize::{split_sentences, stem};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// One cause → effect statement of an article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CausalSignal {
    pub cause: String,
    pub effect: String,
    /// 0..1, see [`confidence`].
    pub confidence: f64,
    /// "short-term", "medium-term" or "long-term" (time words in the sentence; default short).
    pub time_horizon: String,
}

/// Normalised effect for a rise in price.
pub const PRICE_INCREASE: &str = "price increase";
/// Normalised effect for a fall in price.
pub const PRICE_DECREASE: &str = "price decrease";

impl CausalSignal {
    /// +1 for a price increase, −1 for a price decrease, `None` for anything else.
    pub fn price_direction(&self) -> Option<f64> {
        match self.effect.as_str() {
            PRICE_INCREASE => Some(1.0),
            PRICE_DECREASE => Some(-1.0),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Orientation {
    /// "EFFECT after CAUSE" (or, sentence-initial, "After CAUSE, EFFECT").
    CauseAfter,
    /// "CAUSE sparked EFFECT".
    CauseBefore,
}

/// How explicitly a connective asserts causation; the base of [`confidence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    Explicit,
    Strong,
    Weak,
}

impl Strength {
    fn base(self) -> f64 {
        match self {
            Strength::Explicit => 0.8,
            Strength::Strong => 0.65,
            Strength::Weak => 0.5,
        }
    }
}

/// The connectives, longest first where one extends another ("triggered by" before "triggered").
const CONNECTIVES: &[(&str, Orientation, Strength)] = {
    use Orientation::*;
    use Strength::*;
    &[
        ("as a result of", CauseAfter, Explicit),
        ("on the back of", CauseAfter, Strong),
        ("in response to", CauseAfter, Strong),
        ("in the wake of", CauseAfter, Strong),
        ("because of", CauseAfter, Explicit),
        ("due to", CauseAfter, Explicit),
        ("owing to", CauseAfter, Explicit),
        ("thanks to", CauseAfter, Strong),
        ("driven by", CauseAfter, Explicit),
        ("caused by", CauseAfter, Explicit),
        ("triggered by", CauseAfter, Explicit),
        ("sparked by", CauseAfter, Explicit),
        ("fueled by", CauseAfter, Strong),
        ("fuelled by", CauseAfter, Strong),
        ("spurred by", CauseAfter, Strong),
        ("prompted by", CauseAfter, Strong),
        ("led by", CauseAfter, Weak),
        ("on news", CauseAfter, Weak),
        ("on hopes", CauseAfter, Weak),
        ("on fears", CauseAfter, Weak),
        ("on reports", CauseAfter, Weak),
        ("because", CauseAfter, Explicit),
        ("after", CauseAfter, Strong),
        ("following", CauseAfter, Strong),
        ("amid", CauseAfter, Weak),
        ("amidst", CauseAfter, Weak),
        ("as", CauseAfter, Weak),
        ("led to", CauseBefore, Explicit),
        ("leads to", CauseBefore, Explicit),
        ("lead to", CauseBefore, Explicit),
        ("resulted in", CauseBefore, Explicit),
        ("results in", CauseBefore, Explicit),
        ("triggered", CauseBefore, Explicit),
        ("triggers", CauseBefore, Explicit),
        ("sparked", CauseBefore, Explicit),
        ("sparks", CauseBefore, Explicit),
        ("caused", CauseBefore, Explicit),
        ("causes", CauseBefore, Explicit),
        ("prompted", CauseBefore, Strong),
        ("fueled", CauseBefore, Strong),
        ("fuelled", CauseBefore, Strong),
        ("drove", CauseBefore, Strong),
        ("sent", CauseBefore, Weak),
        ("pushed", CauseBefore, Weak),
        ("weighed on", CauseBefore, Strong),
        ("boosted", CauseBefore, Strong),
        ("lifted", CauseBefore, Weak),
    ]
};

/// Words after "as" that make it comparative or temporal, not causal ("as well as", "as of").
const AS_NOT_CAUSAL_NEXT: &[&str] = &[
    "well", "of", "part", "much", "many", "long", "soon", "such", "far", "if", "though",
    "expected", "usual", "low", "high", "little", "few", "a", "an", "to", "per", "opposed",
    "compared", "recently", "early", "late", "often", "quickly", "large", "big", "good", "bad",
];
/// Words before "as" with the same effect ("such as", "known as", "twice as").
const AS_NOT_CAUSAL_PREV: &[&str] = &[
    "such",
    "known",
    "same",
    "so",
    "as",
    "just",
    "twice",
    "seen",
    "regarded",
    "described",
    "serve",
    "served",
    "serves",
    "act",
    "acts",
    "acted",
    "used",
    "much",
    "well",
    "referred",
    "classified",
    "listed",
    "named",
    "identified",
    "labeled",
    "labelled",
    "treated",
];
/// Words after "after"/"following" that make them temporal ("after 2 p.m.", "following day").
const TEMPORAL_NEXT: &[&str] = &[
    "hours", "hour", "days", "day", "weeks", "week", "months", "month", "years", "year", "minutes",
    "midnight", "noon", "all", "that", "which", "this",
];

const UP_WORDS: &[&str] = &[
    "rise",
    "rose",
    "risen",
    "rising",
    "surge",
    "surged",
    "jump",
    "jumped",
    "rally",
    "rallied",
    "climb",
    "climbed",
    "gain",
    "gained",
    "soar",
    "soared",
    "rebound",
    "rebounded",
    "spike",
    "spiked",
    "higher",
    "advance",
    "advanced",
    "recover",
    "recovered",
    "pump",
    "pumped",
    "breakout",
    "skyrocket",
    "skyrocketed",
    "moon",
    "mooned",
    "increase",
    "increased",
    "up",
];
const DOWN_WORDS: &[&str] = &[
    "fall",
    "fell",
    "fallen",
    "falling",
    "drop",
    "dropped",
    "plunge",
    "plunged",
    "slump",
    "slumped",
    "tumble",
    "tumbled",
    "decline",
    "declined",
    "slide",
    "slid",
    "sink",
    "sank",
    "crash",
    "crashed",
    "dip",
    "dipped",
    "lower",
    "lose",
    "lost",
    "losing",
    "loss",
    "selloff",
    "sell-off",
    "correction",
    "dump",
    "dumped",
    "retreat",
    "retreated",
    "slip",
    "slipped",
    "tank",
    "tanked",
    "plummet",
    "plummeted",
    "decrease",
    "decreased",
    "down",
    "liquidation",
];
/// Quantities that move but are not the price: the effect names them instead.
const METRICS: &[&str] = &[
    "inflows",
    "outflows",
    "volume",
    "volumes",
    "hashrate",
    "tvl",
    "supply",
    "fees",
    "yields",
    "inflation",
    "rates",
    "funding",
    "demand",
    "reserves",
    "liquidity",
    "interest",
];
const NEGATORS: &[&str] = &["not", "no", "never", "failed", "fails", "without"];

struct Vocab {
    up: FastSet,
    down: FastSet,
    connectives: Vec<(Vec<&'static str>, Orientation, Strength)>,
    /// First words of the connectives: most words start none, and are skipped with one lookup.
    connective_starts: FastSet,
}

fn vocab() -> &'static Vocab {
    static V: OnceLock<Vocab> = OnceLock::new();
    V.get_or_init(|| Vocab {
        up: UP_WORDS.iter().map(|w| stem(w)).collect(),
        down: DOWN_WORDS.iter().map(|w| stem(w)).collect(),
        connectives: CONNECTIVES
            .iter()
            .map(|&(c, o, s)| (c.split(' ').collect(), o, s))
            .collect(),
        connective_starts: CONNECTIVES
            .iter()
            .filter_map(|(c, ..)| c.split(' ').next().map(str::to_string))
            .collect(),
    })
}

/// Whether a lowercase word is a price-movement word ("surges", "plunged"): such words make a
/// phrase a statement, not a noun phrase, for key-phrase extraction.
pub fn is_movement_word(lower: &str) -> bool {
    let v = vocab();
    let s = stem(lower);
    v.up.contains(&s) || v.down.contains(&s)
}

/// Signals reported per article.
pub const MAX_SIGNALS: usize = 10;
/// Longest cause or effect kept, in words.
const MAX_SIDE_WORDS: usize = 12;

/// Confidence = connective strength (explicit 0.8, strong 0.65, weak 0.5) + 0.1 if the effect is
/// a recognised movement + 0.05 if stated in the title, capped at 0.95: a model that only reads
/// the sentence should never be certain that the stated cause is the real one.
pub fn confidence(base: f64, movement: bool, in_title: bool) -> f64 {
    let c = base + if movement { 0.1 } else { 0.0 } + if in_title { 0.05 } else { 0.0 };
    round4(c.min(0.95))
}

/// Start of the clause that ends at word `end` (exclusive).
fn clause_start(ws: &[Word<'_>], end: usize) -> usize {
    let mut j = end;
    while j > 0 {
        j -= 1;
        if ws[j].boundary_before {
            return j;
        }
    }
    0
}

/// End (exclusive) of the clause starting at word `start`.
fn clause_end(ws: &[Word<'_>], start: usize) -> usize {
    let mut k = start + 1;
    while k < ws.len() && !ws[k].boundary_before {
        k += 1;
    }
    k
}

/// Trims stop words from both ends and caps the length; `None` if no content word is left.
fn side(lower: &[String], mut a: usize, mut b: usize) -> Option<(usize, usize)> {
    while a < b && is_stop_word(&lower[a]) {
        a += 1;
    }
    b = b.min(a + MAX_SIDE_WORDS);
    while b > a && is_stop_word(&lower[b - 1]) {
        b -= 1;
    }
    (b > a).then_some((a, b))
}

fn text_of(sentence: &str, ws: &[Word<'_>], a: usize, b: usize) -> String {
    sentence[ws[a].start..ws[b - 1].end].to_string()
}

/// The movement an effect clause describes: ("price" or a metric noun, +1/−1).
fn movement(lower: &[String], a: usize, b: usize) -> Option<(&'static str, f64)> {
    let v = vocab();
    let mut metric: &'static str = "price";
    for k in a..b {
        let w = lower[k].as_str();
        if let Some(m) = METRICS.iter().find(|m| **m == w) {
            metric = m;
        }
        let s = stem(w);
        let dir = if v.up.contains(&s) {
            1.0
        } else if v.down.contains(&s) {
            -1.0
        } else {
            continue;
        };
        // "did not fall" says the price held, not that it rose: no movement.
        let negated = lower[a.max(k.saturating_sub(3))..k]
            .iter()
            .any(|p| NEGATORS.contains(&p.as_str()));
        return (!negated).then_some((metric, dir));
    }
    None
}

fn horizon(lower: &[String]) -> &'static str {
    let has = |ws: &[&str]| lower.iter().any(|l| ws.contains(&l.as_str()));
    if has(&[
        "months",
        "years",
        "long-term",
        "quarter",
        "quarters",
        "decade",
        "cycle",
    ]) {
        "long-term"
    } else if has(&["week", "weeks", "days", "month", "medium-term", "coming"]) {
        "medium-term"
    } else {
        "short-term"
    }
}

fn guard_ok(conn: &[&str], lower: &[String], i: usize, n: usize) -> bool {
    let next = lower.get(i + n).map(String::as_str).unwrap_or("");
    let prev = if i > 0 { lower[i - 1].as_str() } else { "" };
    match conn {
        ["as"] => !AS_NOT_CAUSAL_NEXT.contains(&next) && !AS_NOT_CAUSAL_PREV.contains(&prev),
        ["after"] | ["following"] => {
            !TEMPORAL_NEXT.contains(&next)
                && !next.starts_with(|c: char| c.is_ascii_digit())
                && prev != "the"
        }
        _ => true,
    }
}

/// Causal signals of one sentence.
fn sentence_signals(sentence: &str, in_title: bool, out: &mut Vec<CausalSignal>) {
    let ws = words(sentence);
    if ws.len() < 3 {
        return;
    }
    let lower: Vec<String> = ws.iter().map(|w| w.text.to_lowercase()).collect();
    let v = vocab();
    let mut i = 0;
    while i < ws.len() {
        if !v.connective_starts.contains(lower[i].as_str()) {
            i += 1;
            continue;
        }
        let found = v.connectives.iter().find(|(c, ..)| {
            i + c.len() <= ws.len()
                && c.iter().zip(&lower[i..]).all(|(a, b)| a == b)
                && ws[i + 1..i + c.len()].iter().all(|w| !w.boundary_before)
                && guard_ok(c, &lower, i, c.len())
        });
        let Some((conn, orient, strength)) = found else {
            i += 1;
            continue;
        };
        let n = conn.len();
        let (cause, effect) = match orient {
            Orientation::CauseAfter if ws[i].sentence_start => {
                // "After the hack, prices fell": cause up to the comma, effect the next clause.
                let ce = clause_end(&ws, i + n - 1).max(i + n);
                if ce >= ws.len() {
                    i += n;
                    continue;
                }
                let ee = clause_end(&ws, ce);
                (side(&lower, i + n, ce), side(&lower, ce, ee))
            }
            Orientation::CauseAfter => {
                let cs = clause_start(&ws, i);
                let ce = if i + n < ws.len() {
                    clause_end(&ws, i + n)
                } else {
                    i + n
                };
                (side(&lower, i + n, ce), side(&lower, cs, i))
            }
            Orientation::CauseBefore => {
                let mut cs = clause_start(&ws, i);
                let mut ce = i;
                // "The attack, which X attributed to Y, triggered ...": the cause is the
                // subject before the relative clause, not the relative clause.
                if cs > 0 && matches!(lower[cs].as_str(), "which" | "who" | "that") {
                    ce = cs;
                    cs = clause_start(&ws, cs);
                }
                let ee = if i + n < ws.len() {
                    clause_end(&ws, i + n)
                } else {
                    i + n
                };
                (side(&lower, cs, ce), side(&lower, i + n, ee))
            }
        };
        let (Some((ca, cb)), Some((ea, eb))) = (cause, effect) else {
            i += n;
            continue;
        };
        let mv = movement(&lower, ea, eb);
        // Weak connectives ("as", "amid", "sent") only count when a movement is described:
        // "Bitcoin, seen as digital gold" is no causal claim.
        if *strength == Strength::Weak && mv.is_none() {
            i += n;
            continue;
        }
        let effect = match mv {
            Some((metric, d)) => {
                format!("{metric} {}", if d > 0.0 { "increase" } else { "decrease" })
            }
            None => text_of(sentence, &ws, ea, eb),
        };
        out.push(CausalSignal {
            cause: text_of(sentence, &ws, ca, cb),
            effect,
            confidence: confidence(strength.base(), mv.is_some(), in_title),
            time_horizon: horizon(&lower).to_string(),
        });
        i += n;
    }
}

/// Causal signals of an article in order of appearance, deduplicated by (cause, effect)
/// ignoring case (the strongest kept), at most [`MAX_SIGNALS`].
pub fn extract(title: &str, body: &str) -> Vec<CausalSignal> {
    let mut all = Vec::new();
    if !title.trim().is_empty() {
        sentence_signals(title, true, &mut all);
    }
    for s in split_sentences(body) {
        sentence_signals(s, false, &mut all);
    }
    let mut out: Vec<CausalSignal> = Vec::new();
    for s in all {
        let dup = out
            .iter_mut()
            .find(|o| o.effect == s.effect && o.cause.to_lowercase() == s.cause.to_lowercase());
        match dup {
            Some(o) => {
                if s.confidence > o.confidence {
                    *o = s;
                }
            }
            None => out.push(s),
        }
    }
    out.truncate(MAX_SIGNALS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> CausalSignal {
        let s = extract("", text);
        assert_eq!(s.len(), 1, "{text}: {s:?}");
        s[0].clone()
    }

    #[test]
    fn effect_first_patterns() {
        let s = one("Bitcoin jumped 8% after the SEC approved spot ETFs.");
        assert_eq!(s.cause, "SEC approved spot ETFs");
        assert_eq!(s.effect, PRICE_INCREASE);
        assert_eq!(s.confidence, 0.75);
        assert_eq!(s.time_horizon, "short-term");
        let s = one("Ether fell sharply due to heavy liquidations on derivatives venues.");
        assert_eq!(s.cause, "heavy liquidations on derivatives venues");
        assert_eq!(s.effect, PRICE_DECREASE);
        assert_eq!(s.confidence, 0.9);
        let s = one("Prices slid amid fears of a rate hike in the coming weeks.");
        assert_eq!(s.cause, "fears of a rate hike in the coming weeks");
        assert_eq!(s.effect, PRICE_DECREASE);
        assert_eq!(s.time_horizon, "medium-term");
        let s = one("ETF inflows surged on the back of strong institutional demand.");
        assert_eq!(s.effect, "inflows increase");
    }

    #[test]
    fn cause_first_and_sentence_initial() {
        let s = one(
            "The attack, which a security firm blamed on a state group, triggered a wave of withdrawals.",
        );
        assert_eq!(s.cause, "attack");
        assert_eq!(s.effect, "wave of withdrawals");
        let s = one("Bitcoin fell after hackers drained $1.4 billion from an exchange.");
        assert_eq!(s.cause, "hackers drained $1.4 billion from an exchange");
        let s = one("The exchange hack sparked a broad sell-off.");
        assert_eq!(s.cause, "exchange hack");
        assert_eq!(s.effect, PRICE_DECREASE);
        let s = one("Following the token unlock, SOL dropped 5%.");
        assert_eq!(s.cause, "token unlock");
        assert_eq!(s.effect, PRICE_DECREASE);
        let s = one("The merger led to a new governance structure.");
        assert_eq!(s.effect, "governance structure");
        assert_eq!(s.confidence, 0.8);
    }

    #[test]
    fn non_causal_uses_are_ignored() {
        for t in [
            "Bitcoin, known as digital gold, is traded on many venues.",
            "Assets such as bitcoin and ether are volatile.",
            "Trading resumed after 3 p.m. on Monday.",
            "The market was quiet as well as thin.",
            "Regulators met amid the holidays.",
        ] {
            assert!(extract("", t).is_empty(), "{t}: {:?}", extract("", t));
        }
    }

    #[test]
    fn negated_movement_is_not_a_movement() {
        let s = one("Bitcoin did not fall after the announcement.");
        assert_eq!(s.effect, "Bitcoin did not fall");
        assert_eq!(s.confidence, 0.65);
    }
}
