//! Sentence and article sentiment for crypto/financial news.
//!
//! Model: multinomial logistic regression over (a) hashed unigram and bigram features of stemmed
//! tokens, negation-marked, and (b) a handful of dense, explainable features computed from the
//! lexicon: positive/negative lexicon mass, metric-direction compositions ("loss narrowed" is
//! good, "costs rose" is bad) and numeric comparisons ("to EUR 13.1 mn from EUR 8.7 mn").
//! The weights are trained offline by `train` (`crates/model/train.sh`) and compiled in from
//! `weights/sentiment_weights.json`, so scoring needs no file or network access.
//!
//! Articles are scored sentence by sentence and aggregated: the title and the lead count more
//! (that is where news states its point), and opinionated sentences count more than neutral
//! boilerplate, which would otherwise drown every article into NEUTRAL.

use crate::hash::{FNV_OFFSET, fnv1a as fnv};
use crate::lexicon::{Domain, LexHit, Lexicon};
use crate::tokenize::{Token, split_sentences, tokenize};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Number of hash buckets for word features is `1 << HASH_BITS`.
pub const HASH_BITS: u32 = 18;
const HASH_MASK: u64 = (1u64 << HASH_BITS) - 1;
/// Class order used by every weight row: bullish, bearish, neutral.
pub const N_CLASSES: usize = 3;
/// Names of the dense features, in weight-file order.
pub const DENSE_NAMES: [&str; N_DENSE] = [
    "lex_pos",
    "lex_neg",
    "metric_up",
    "metric_down",
    "cmp_up",
    "cmp_down",
    "negations",
    "has_amount",
    "lex_pos_max",
    "lex_neg_max",
];
pub const N_DENSE: usize = 10;

/// The committed weights, produced by `crates/model/train.sh`.
const WEIGHTS_JSON: &str = include_str!("../weights/sentiment_weights.json");

/// Sentiment class. PhraseBank positive/negative/neutral map to Bullish/Bearish/Neutral.
/// Serialized as the seed's `BULLISH`/`BEARISH`/`NEUTRAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Label {
    Bullish,
    Bearish,
    Neutral,
}

impl Label {
    pub const ALL: [Label; 3] = [Label::Bullish, Label::Bearish, Label::Neutral];

    pub fn index(self) -> usize {
        match self {
            Label::Bullish => 0,
            Label::Bearish => 1,
            Label::Neutral => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Bullish => "BULLISH",
            Label::Bearish => "BEARISH",
            Label::Neutral => "NEUTRAL",
        }
    }

    /// Parses PhraseBank labels (`positive`/`negative`/`neutral`) and the daemon's own names.
    pub fn parse(s: &str) -> Option<Label> {
        match s.trim().to_ascii_lowercase().as_str() {
            "positive" | "bullish" => Some(Label::Bullish),
            "negative" | "bearish" => Some(Label::Bearish),
            "neutral" => Some(Label::Neutral),
            _ => None,
        }
    }
}

/// Class probabilities; always sums to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub bullish: f64,
    pub bearish: f64,
    pub neutral: f64,
}

impl Distribution {
    fn from_array(p: [f64; N_CLASSES]) -> Self {
        let sum: f64 = p.iter().sum();
        let p = if sum > 0.0 && sum.is_finite() {
            [p[0] / sum, p[1] / sum, p[2] / sum]
        } else {
            [0.0, 0.0, 1.0]
        };
        Self {
            bullish: p[0],
            bearish: p[1],
            neutral: p[2],
        }
    }

    fn as_array(&self) -> [f64; N_CLASSES] {
        [self.bullish, self.bearish, self.neutral]
    }

    /// Most probable label; ties resolve towards Neutral, then Bearish (never invent a signal).
    fn argmax(&self) -> Label {
        let mut best = Label::Neutral;
        let mut best_p = self.neutral;
        for (l, p) in [
            (Label::Bearish, self.bearish),
            (Label::Bullish, self.bullish),
        ] {
            if p > best_p {
                best = l;
                best_p = p;
            }
        }
        best
    }
}

/// What kind of signal a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EvidenceKind {
    /// A finance lexicon entry ("profit warning").
    Lexicon,
    /// A crypto event lexicon entry ("hacked", "etf inflows").
    CryptoLexicon,
    /// A metric moved in a direction ("loss narrowed").
    MetricDirection,
    /// Two amounts compared ("to 13.1 from 8.7").
    NumericComparison,
    /// A learned word or word-pair feature.
    Feature,
}

/// One reason for the verdict. `weight` is the push in logits towards bullish (positive) or
/// bearish (negative): bullish-logit contribution minus bearish-logit contribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub text: String,
    pub negated: bool,
    pub weight: f64,
}

/// Result for a sentence or an article.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentiment {
    pub label: Label,
    /// P(bullish) - P(bearish), in -1..1.
    pub score: f64,
    /// Probability of the chosen label (0 for empty input).
    pub confidence: f64,
    pub distribution: Distribution,
    /// Strongest signals first, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<Evidence>,
}

/// Evidence items kept per result.
pub const MAX_EVIDENCE: usize = 8;

/// On-disk weight file; also written by the trainer so both sides share one schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsFile {
    pub version: String,
    pub hash_bits: u32,
    pub dense_names: Vec<String>,
    pub bias: [f32; N_CLASSES],
    pub dense: Vec<[f32; N_CLASSES]>,
    /// Sparse rows: (bucket, bullish, bearish, neutral).
    pub hashed: Vec<(u32, f32, f32, f32)>,
    /// Free-form provenance: training command, hyper-parameters, CV score.
    #[serde(default)]
    pub notes: String,
}

impl WeightsFile {
    /// Parses and checks the schema against this code (bucket count, dense feature names).
    pub fn parse(json: &str) -> Result<Self, String> {
        let w: WeightsFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if w.hash_bits != HASH_BITS {
            return Err(format!("hash_bits {} != {}", w.hash_bits, HASH_BITS));
        }
        if w.dense_names != DENSE_NAMES {
            return Err("dense feature names differ from DENSE_NAMES".into());
        }
        if w.dense.len() != N_DENSE {
            return Err("dense weight row count".into());
        }
        if let Some(&(b, ..)) = w.hashed.iter().find(|r| u64::from(r.0) > HASH_MASK) {
            return Err(format!("bucket {b} out of range"));
        }
        Ok(w)
    }
}

/// Weights expanded for O(1) lookups.
#[derive(Debug)]
struct Weights {
    version: String,
    bias: [f32; N_CLASSES],
    dense: [[f32; N_CLASSES]; N_DENSE],
    hashed: Vec<[f32; N_CLASSES]>,
}

impl Weights {
    fn from_file(f: &WeightsFile) -> Self {
        let mut hashed = vec![[0.0f32; N_CLASSES]; 1usize << HASH_BITS];
        for &(b, x, y, z) in &f.hashed {
            if let Some(slot) = hashed.get_mut(b as usize) {
                *slot = [x, y, z];
            }
        }
        let mut dense = [[0.0f32; N_CLASSES]; N_DENSE];
        for (d, row) in dense.iter_mut().zip(&f.dense) {
            *d = *row;
        }
        Self {
            version: f.version.clone(),
            bias: f.bias,
            dense,
            hashed,
        }
    }

    /// Used only if the compiled-in JSON were unreadable (a unit test forbids that): the
    /// lexicon alone still gives a sensible verdict instead of a panic in the daemon.
    fn lexicon_only() -> Self {
        let mut dense = [[0.0f32; N_CLASSES]; N_DENSE];
        dense[0] = [1.5, -0.5, 0.0];
        dense[1] = [-0.5, 1.5, 0.0];
        dense[2] = [1.0, -1.0, 0.0];
        dense[3] = [-1.0, 1.0, 0.0];
        Self {
            version: "lexicon-only".into(),
            bias: [0.0, 0.0, 1.0],
            dense,
            hashed: vec![[0.0f32; N_CLASSES]; 1usize << HASH_BITS],
        }
    }
}

fn shared_weights() -> &'static Weights {
    static W: OnceLock<Weights> = OnceLock::new();
    W.get_or_init(|| match WeightsFile::parse(WEIGHTS_JSON) {
        Ok(f) => Weights::from_file(&f),
        Err(_) => Weights::lexicon_only(),
    })
}

fn shared_lexicon() -> &'static Lexicon {
    static L: OnceLock<Lexicon> = OnceLock::new();
    L.get_or_init(Lexicon::new)
}

/// Where a hashed feature came from, so evidence can name it without storing strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Origin {
    Unigram(usize),
    Bigram(usize),
    /// A metric-direction pair spanning these tokens ("operating loss narrowed").
    Composite(usize, usize),
}

/// One active hashed feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HashedFeature {
    pub bucket: u32,
    pub value: f32,
    pub origin: Origin,
}

/// A dense-feature signal found in the text (for evidence).
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub kind: EvidenceKind,
    pub start: usize,
    pub end: usize,
    /// Signed strength; which dense feature it feeds follows from `kind` and the sign.
    pub value: f32,
    pub negated: bool,
}

/// Everything the linear model sees for one sentence.
#[derive(Debug, Clone)]
pub struct Features {
    pub tokens: Vec<Token>,
    /// Per token: inside a negation scope.
    pub negated: Vec<bool>,
    pub hashed: Vec<HashedFeature>,
    pub dense: [f32; N_DENSE],
    pub signals: Vec<Signal>,
}

fn bucket(h: u64) -> u32 {
    // invariant: masked to HASH_BITS (18) bits, so it fits in u32.
    ((h ^ (h >> 29)) & HASH_MASK) as u32
}

/// Words that carry no sentiment and only add noise as unigrams (bigrams still see them).
fn is_stop(stem: &str) -> bool {
    matches!(
        stem,
        "the"
            | "a"
            | "an"
            | "of"
            | "and"
            | "in"
            | "on"
            | "for"
            | "at"
            | "by"
            | "with"
            | "is"
            | "was"
            | "be"
            | "been"
            | "it"
            | "its"
            | "as"
            | "that"
            | "this"
            | "which"
            | "will"
            | "has"
            | "have"
            | "had"
            | "are"
            | "were"
            | "or"
    )
}

/// Up to this many tokens between a metric and its direction word.
const METRIC_WINDOW_BACK: usize = 10;
const METRIC_WINDOW_FWD: usize = 3;

/// Commas do not end the window ("profit totalled EUR 3 mn, up 30 %"); the nearest metric wins,
/// so "sales fell, and profit rose" still pairs correctly.
fn breaks_clause(t: &Token) -> bool {
    (t.is_clause() && t.stem != ",")
        || matches!(
            t.stem.as_str(),
            "while" | "but" | "wherea" | "although" | "however"
        )
}

/// Words allowed between a direction word and a following metric ("increase in net sales").
fn is_metric_filler(stem: &str) -> bool {
    matches!(
        stem,
        "in" | "of"
            | "net"
            | "operating"
            | "the"
            | "its"
            | "pretax"
            | "gross"
            | "quarterly"
            | "annual"
            | "comparable"
            | "total"
            | "group"
            | "consolidated"
            | "a"
            | "their"
    )
}

/// Extracts features; public so the trainer uses exactly the scoring-time features.
pub fn featurize(text: &str) -> Features {
    featurize_with(shared_lexicon(), text)
}

fn featurize_with(lx: &Lexicon, text: &str) -> Features {
    let tokens = tokenize(text);
    let negated = lx.negation_mask(&tokens);
    let hits = lx.hits(&tokens, &negated);
    let mut dense = [0.0f32; N_DENSE];
    let mut signals: Vec<Signal> = Vec::new();

    for h in &hits {
        add_lex(&mut dense, h);
        signals.push(Signal {
            kind: match h.domain {
                Domain::Finance => EvidenceKind::Lexicon,
                Domain::Crypto => EvidenceKind::CryptoLexicon,
            },
            start: h.start,
            end: h.start + h.len,
            value: h.score,
            negated: h.negated,
        });
    }

    let mut composite = Vec::new();
    metric_directions(
        lx,
        &tokens,
        &negated,
        &mut dense,
        &mut signals,
        &mut composite,
    );
    numeric_comparisons(lx, &tokens, &mut dense, &mut signals);

    dense[6] = negated.iter().filter(|&&n| n).count().min(3) as f32 / 3.0;
    dense[7] = if tokens.iter().any(|t| t.is_amount()) {
        1.0
    } else {
        0.0
    };
    for d in dense.iter_mut().take(6) {
        *d = d.min(4.0);
    }

    let mut hashed = hashed_features(&tokens, &negated);
    hashed.extend(composite);
    Features {
        tokens,
        negated,
        hashed,
        dense,
        signals,
    }
}

/// Sums (how much) and maxima (how strong the strongest cue is): one "bankruptcy" should weigh
/// more than three mild "lower"s, which a sum alone cannot express.
fn add_lex(dense: &mut [f32; N_DENSE], h: &LexHit) {
    if h.score > 0.0 {
        dense[0] += h.score;
        dense[8] = dense[8].max(h.score);
    } else {
        dense[1] += -h.score;
        dense[9] = dense[9].max(-h.score);
    }
}

fn metric_directions(
    lx: &Lexicon,
    tokens: &[Token],
    negated: &[bool],
    dense: &mut [f32; N_DENSE],
    signals: &mut Vec<Signal>,
    composite: &mut Vec<HashedFeature>,
) {
    let mut buf = String::with_capacity(32);
    for (i, t) in tokens.iter().enumerate() {
        if !t.is_word() {
            continue;
        }
        // "turned to a net profit", "swung into loss": the metric reached is the news.
        let transition = matches!(
            t.stem.as_str(),
            "turn" | "swung" | "swing" | "return" | "mov"
        ) && tokens
            .get(i + 1)
            .is_some_and(|n| n.stem == "to" || n.stem == "into");
        let Some(mut dir) = lx
            .direction(&t.stem)
            .or(if transition { Some(1.0) } else { None })
        else {
            continue;
        };
        if negated[i] {
            dir = -dir;
        }
        // Backward: "operating profit rose", "costs were cut".
        let mut found: Option<(usize, f32)> = None;
        let mut j = if transition { 0 } else { i };
        while j > 0 && i - j < METRIC_WINDOW_BACK {
            j -= 1;
            if breaks_clause(&tokens[j]) {
                break;
            }
            if tokens[j].is_word()
                && let Some(p) = lx.metric_at(tokens, j, &mut buf)
            {
                found = Some((j, p));
                break;
            }
        }
        // Forward: "increase in net sales", "higher costs".
        if found.is_none() {
            let mut k = if transition { i + 2 } else { i + 1 };
            while k < tokens.len() && k - i <= METRIC_WINDOW_FWD + 2 * usize::from(transition) {
                if tokens[k].is_clause() || !tokens[k].is_word() {
                    break;
                }
                if let Some(p) = lx.metric_at(tokens, k, &mut buf) {
                    found = Some((k, p));
                    break;
                }
                if !is_metric_filler(&tokens[k].stem) {
                    break;
                }
                k += 1;
            }
        }
        if let Some((m, p)) = found {
            let v = p * dir;
            if v > 0.0 {
                dense[2] += v;
            } else {
                dense[3] += -v;
            }
            signals.push(Signal {
                kind: EvidenceKind::MetricDirection,
                start: m.min(i),
                end: m.max(i) + 1,
                value: v,
                negated: negated[i],
            });
            // Which metric moved matters too ("prices up" is not "sales up"): learn it.
            let tag: &[u8] = if dir > 0.0 { b"M+" } else { b"M-" };
            composite.push(HashedFeature {
                bucket: bucket(fnv(fnv(FNV_OFFSET, tag), tokens[m].stem.as_bytes())),
                value: 1.0,
                origin: Origin::Composite(m.min(i), m.max(i) + 1),
            });
        }
    }
}

/// Finds "A ... from B", "from B to A" and "A ... compared to/with B" where A is the current
/// amount and B the earlier one, then signs the change by the polarity of the metric named
/// before A (a bigger loss is bad). Mixed metrics ("a loss of 2 compared to a profit of 3")
/// take the polarity of the current one.
fn numeric_comparisons(
    lx: &Lexicon,
    tokens: &[Token],
    dense: &mut [f32; N_DENSE],
    signals: &mut Vec<Signal>,
) {
    let mut buf = String::with_capacity(32);
    let n = tokens.len();
    let mut i = 0;
    while i < n {
        let s = tokens[i].stem.as_str();
        let comparator = matches!(s, "from" | "compar" | "versus" | "vs" | "against");
        if !comparator {
            i += 1;
            continue;
        }
        // B: first amount within 4 tokens after the comparator.
        let Some(b) = (i + 1..(i + 5).min(n)).find(|&k| tokens[k].is_amount()) else {
            i += 1;
            continue;
        };
        // A: either "from B to A" or the last amount before the comparator.
        let forward_a = if s == "from" {
            (b + 1..(b + 6).min(n))
                .find(|&k| tokens[k].stem == "to")
                .and_then(|to| (to + 1..(to + 4).min(n)).find(|&k| tokens[k].is_amount()))
        } else {
            None
        };
        let a = forward_a.or_else(|| {
            (i.saturating_sub(10)..i)
                .rev()
                .find(|&k| tokens[k].is_amount())
        });
        let Some(a) = a else {
            i += 1;
            continue;
        };
        if tokens[a].kind != tokens[b].kind {
            i += 1;
            continue;
        }
        let first = a.min(b);
        // "a EUR 1.5 mn loss": the metric may follow the amount (after a scale word).
        let after = |x: usize, buf: &mut String| {
            (x + 1..(x + 3).min(n))
                .take_while(|&k| tokens[k].is_word())
                .find_map(|k| lx.metric_at(tokens, k, buf))
        };
        let metric_a = after(a, &mut buf).or_else(|| {
            (first.saturating_sub(12)..first)
                .rev()
                .find_map(|k| lx.metric_at(tokens, k, &mut buf))
        });
        let metric_b = if forward_a.is_none() {
            (i + 1..b)
                .find_map(|k| lx.metric_at(tokens, k, &mut buf))
                .or_else(|| after(b, &mut buf))
        } else {
            None
        };
        let pol = metric_a.unwrap_or(0.5);
        let va = tokens[a].value;
        let vb = tokens[b].value;
        let v = match metric_b {
            Some(pb) if metric_a.is_some() && pb * pol < 0.0 => pol.signum(),
            _ if (va - vb).abs() <= f64::EPSILON * va.abs().max(1.0) => 0.0,
            _ if va > vb => pol,
            _ => -pol,
        };
        if v != 0.0 {
            if v > 0.0 {
                dense[4] += v;
            } else {
                dense[5] += -v;
            }
            signals.push(Signal {
                kind: EvidenceKind::NumericComparison,
                start: first,
                end: a.max(b) + 1,
                value: v,
                negated: false,
            });
        }
        i = b + 1;
    }
}

fn hashed_features(tokens: &[Token], negated: &[bool]) -> Vec<HashedFeature> {
    let mut out = Vec::with_capacity(tokens.len() * 2);
    let mut prev: Option<usize> = None;
    for (i, t) in tokens.iter().enumerate() {
        if t.is_clause() {
            prev = None;
            continue;
        }
        if !is_stop(&t.stem) {
            let tag: &[u8] = if negated[i] { b"U!" } else { b"U" };
            let h = fnv(fnv(FNV_OFFSET, tag), t.stem.as_bytes());
            out.push(HashedFeature {
                bucket: bucket(h),
                value: 1.0,
                origin: Origin::Unigram(i),
            });
        }
        if let Some(p) = prev {
            let h = fnv(fnv(FNV_OFFSET, b"B"), tokens[p].stem.as_bytes());
            let h = fnv(fnv(h, b" "), t.stem.as_bytes());
            out.push(HashedFeature {
                bucket: bucket(h),
                value: 1.0,
                origin: Origin::Bigram(p),
            });
        }
        prev = Some(i);
    }
    out
}

fn softmax(z: [f64; N_CLASSES]) -> [f64; N_CLASSES] {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = [(z[0] - m).exp(), (z[1] - m).exp(), (z[2] - m).exp()];
    let s = e[0] + e[1] + e[2];
    [e[0] / s, e[1] / s, e[2] / s]
}

fn span_text(tokens: &[Token], start: usize, end: usize) -> String {
    let mut s = String::new();
    for t in tokens.iter().take(end).skip(start) {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&t.surface);
    }
    s
}

/// Sorts strongest first with a total, deterministic order, merging equal (kind, text) items.
fn rank_evidence(mut ev: Vec<Evidence>) -> Vec<Evidence> {
    ev.sort_by(|a, b| {
        (a.kind as u8, &a.text, a.negated)
            .cmp(&(b.kind as u8, &b.text, b.negated))
            .then(a.weight.total_cmp(&b.weight))
    });
    let mut merged: Vec<Evidence> = Vec::with_capacity(ev.len());
    for e in ev {
        match merged.last_mut() {
            Some(last)
                if last.kind == e.kind && last.text == e.text && last.negated == e.negated =>
            {
                last.weight += e.weight
            }
            _ => merged.push(e),
        }
    }
    merged.retain(|e| e.weight.abs() > 1e-6);
    merged.sort_by(|a, b| {
        b.weight
            .abs()
            .total_cmp(&a.weight.abs())
            .then_with(|| a.text.cmp(&b.text))
            .then_with(|| (a.kind as u8).cmp(&(b.kind as u8)))
    });
    merged.truncate(MAX_EVIDENCE);
    merged
}

/// Title weight relative to a body sentence.
const TITLE_WEIGHT: f64 = 2.5;

/// The sentiment model: lexicon + compiled-in linear weights. Cheap to create and `Sync`; the
/// weights are parsed once per process and shared.
#[derive(Debug, Clone, Copy)]
pub struct SentimentModel {
    weights: &'static Weights,
    lexicon: &'static Lexicon,
}

impl Default for SentimentModel {
    fn default() -> Self {
        Self::new()
    }
}

impl SentimentModel {
    /// Model version reported with each verdict; equals the `version` in the weight file (a test
    /// checks it), so retraining forces a bump.
    pub const VERSION: &'static str = "nlpsent-lr-2026.1";

    /// Loads the compiled-in weights (parsed on first use, then shared).
    pub fn new() -> Self {
        Self {
            weights: shared_weights(),
            lexicon: shared_lexicon(),
        }
    }

    /// Version string of the weights actually loaded (differs from [`Self::VERSION`] only if the
    /// compiled-in file failed to parse and the lexicon-only fallback is in use).
    pub fn loaded_version(&self) -> &str {
        &self.weights.version
    }

    /// Scores one sentence or a whole article. Text with several sentences is treated as an
    /// article; if its first line has no final punctuation it is taken as the title.
    pub fn score(&self, text: &str) -> Sentiment {
        let (title, body) = match text.split_once('\n') {
            Some((first, rest))
                if !first.trim().is_empty()
                    && first.len() < 300
                    && !first.trim_end().ends_with(['.', '!', '?', ':']) =>
            {
                (Some(first), rest)
            }
            _ => (None, text),
        };
        self.score_article(title.unwrap_or(""), body)
    }

    /// Scores an article from its title and body (either may be empty).
    pub fn score_article(&self, title: &str, body: &str) -> Sentiment {
        let mut parts: Vec<(f64, Sentiment)> = Vec::new();
        if !title.trim().is_empty() {
            parts.push((TITLE_WEIGHT, self.score_sentence(title)));
        }
        for (i, s) in split_sentences(body).into_iter().enumerate() {
            // Lead sentences state the news; later ones add context. 2.0 -> 1.0.
            let position = 1.0 + 1.0 / (1.0 + 0.5 * i as f64);
            parts.push((position, self.score_sentence(s)));
        }
        match parts.len() {
            0 => Sentiment {
                label: Label::Neutral,
                score: 0.0,
                confidence: 0.0,
                distribution: Distribution::from_array([0.0, 0.0, 1.0]),
                evidence: Vec::new(),
            },
            1 => parts
                .pop()
                .map(|(_, s)| s)
                .unwrap_or_else(|| self.score_sentence("")),
            _ => aggregate(parts),
        }
    }

    /// Scores a single sentence (no splitting).
    pub fn score_sentence(&self, text: &str) -> Sentiment {
        let f = featurize_with(self.lexicon, text);
        let w = self.weights;
        let mut z = w.bias.map(f64::from);
        // Collect feature pushes first and name only the strongest: naming allocates.
        let mut pushes: Vec<(f64, Origin)> = Vec::new();
        for h in &f.hashed {
            let row = w.hashed[h.bucket as usize];
            for c in 0..N_CLASSES {
                z[c] += f64::from(row[c] * h.value);
            }
            let push = f64::from((row[0] - row[1]) * h.value);
            if push.abs() > 0.15 {
                pushes.push((push, h.origin));
            }
        }
        pushes.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
        pushes.truncate(MAX_EVIDENCE);
        let mut ev: Vec<Evidence> = Vec::with_capacity(pushes.len() + f.signals.len());
        for (push, origin) in pushes {
            let (text, negated) = match origin {
                Origin::Unigram(i) => (
                    f.tokens[i].surface.clone(),
                    f.negated.get(i).copied().unwrap_or(false),
                ),
                Origin::Composite(a, b) => (span_text(&f.tokens, a, b), false),
                Origin::Bigram(i) => {
                    let next = (i + 1..f.tokens.len())
                        .find(|&k| !f.tokens[k].is_clause())
                        .unwrap_or(i);
                    (
                        format!("{} {}", f.tokens[i].surface, f.tokens[next].surface),
                        false,
                    )
                }
            };
            ev.push(Evidence {
                kind: EvidenceKind::Feature,
                text,
                negated,
                weight: push,
            });
        }
        for (row, x) in w.dense.iter().zip(&f.dense) {
            for (zc, wc) in z.iter_mut().zip(row) {
                *zc += f64::from(wc * x);
            }
        }
        // Attribute each dense feature's push to the signals that fed it, pro rata.
        for s in &f.signals {
            let d = match (s.kind, s.value > 0.0) {
                (EvidenceKind::Lexicon | EvidenceKind::CryptoLexicon, true) => 0,
                (EvidenceKind::Lexicon | EvidenceKind::CryptoLexicon, false) => 1,
                (EvidenceKind::MetricDirection, true) => 2,
                (EvidenceKind::MetricDirection, false) => 3,
                (EvidenceKind::NumericComparison, true) => 4,
                (EvidenceKind::NumericComparison, false) => 5,
                (EvidenceKind::Feature, _) => continue,
            };
            let per_unit = f64::from(w.dense[d][0] - w.dense[d][1]);
            let mut weight = per_unit * f64::from(s.value.abs());
            // The strongest lexicon cue of each polarity also drives lex_*_max.
            if d <= 1 {
                let m = 8 + d;
                if (f.dense[m] - s.value.abs()).abs() < 1e-6 {
                    weight += f64::from(w.dense[m][0] - w.dense[m][1]) * f64::from(f.dense[m]);
                }
            }
            ev.push(Evidence {
                kind: s.kind,
                text: span_text(&f.tokens, s.start, s.end),
                negated: s.negated,
                weight,
            });
        }
        let distribution = Distribution::from_array(softmax(z));
        finish(distribution, ev)
    }
}

fn finish(distribution: Distribution, evidence: Vec<Evidence>) -> Sentiment {
    let label = distribution.argmax();
    let confidence = distribution.as_array()[label.index()];
    Sentiment {
        label,
        score: (distribution.bullish - distribution.bearish).clamp(-1.0, 1.0),
        confidence,
        distribution,
        evidence: rank_evidence(evidence),
    }
}

/// Weighted mean of sentence distributions: weight = position weight x (0.25 + share of
/// non-neutral probability), so one clearly bearish sentence is not averaged away by ten
/// neutral ones, while a lone weak signal still is.
fn aggregate(parts: Vec<(f64, Sentiment)>) -> Sentiment {
    let mut acc = [0.0f64; N_CLASSES];
    let mut total = 0.0;
    let mut ev = Vec::new();
    for (pos_w, s) in parts {
        let opinion = 1.0 - s.distribution.neutral;
        let w = pos_w * (0.25 + opinion);
        for (a, p) in acc.iter_mut().zip(s.distribution.as_array()) {
            *a += w * p;
        }
        total += w;
        for mut e in s.evidence {
            e.weight *= pos_w;
            ev.push(e);
        }
    }
    if total > 0.0 {
        for a in &mut acc {
            *a /= total;
        }
    }
    finish(Distribution::from_array(acc), ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> SentimentModel {
        SentimentModel::new()
    }

    #[test]
    fn weights_parse_and_version_matches() {
        let f = WeightsFile::parse(WEIGHTS_JSON);
        assert!(f.is_ok(), "{:?}", f.err());
        let f = f.unwrap();
        assert_eq!(
            f.version,
            SentimentModel::VERSION,
            "bump VERSION with the weights"
        );
        assert_eq!(m().loaded_version(), SentimentModel::VERSION);
        assert!(!f.hashed.is_empty());
    }

    #[test]
    fn negation_flips_bullish() {
        let pos = m().score("Analysts are bullish on bitcoin");
        let neg = m().score("Analysts are not bullish on bitcoin");
        assert_eq!(pos.label, Label::Bullish, "{pos:?}");
        assert!(neg.score < pos.score - 0.3, "{neg:?}");
        assert_ne!(neg.label, Label::Bullish, "{neg:?}");
        assert!(neg.evidence.iter().any(|e| e.negated), "{:?}", neg.evidence);
    }

    #[test]
    fn crypto_events() {
        for (text, want) in [
            (
                "Exchange hacked, $200 million in tokens drained",
                Label::Bearish,
            ),
            ("Major exchange hacked", Label::Bearish),
            ("Bitcoin ETF inflows hit record", Label::Bullish),
            ("Stablecoin depegs as redemptions mount", Label::Bearish),
            (
                "Large token unlock next week worries holders",
                Label::Bearish,
            ),
            ("Token delisted from Binance", Label::Bearish),
            ("SEC approves spot ether ETF", Label::Bullish),
            (
                "Lender files for bankruptcy after withdrawals halted",
                Label::Bearish,
            ),
            ("Fed signals rate cuts, bitcoin rallies", Label::Bullish),
            (
                "Over $1 billion in long liquidations as bitcoin plunges",
                Label::Bearish,
            ),
        ] {
            let s = m().score(text);
            assert_eq!(s.label, want, "{text}: {s:?}");
            assert!(!s.evidence.is_empty(), "{text}");
        }
    }

    #[test]
    fn metric_direction_and_numbers() {
        let s = m().score("Operating loss narrowed to EUR 2.1 mn from EUR 5.3 mn");
        assert_eq!(s.label, Label::Bullish, "{s:?}");
        let s = m().score("Net sales decreased to EUR 80.2 mn from EUR 95.0 mn");
        assert_eq!(s.label, Label::Bearish, "{s:?}");
        let s = m().score("Operating profit totalled EUR 9.8 mn, up from EUR 7.1 mn");
        assert_eq!(s.label, Label::Bullish, "{s:?}");
    }

    #[test]
    fn distribution_sums_to_one_and_ranges() {
        for t in [
            "",
            "hello",
            "Bitcoin ETF inflows hit record",
            "Exchange hacked.\nFunds stolen. The team is investigating. Prices fell sharply.",
        ] {
            let s = m().score(t);
            let d = s.distribution;
            assert!(
                (d.bullish + d.bearish + d.neutral - 1.0).abs() < 1e-9,
                "{t}"
            );
            assert!((-1.0..=1.0).contains(&s.score));
            assert!((0.0..=1.0).contains(&s.confidence));
        }
    }

    #[test]
    fn deterministic() {
        let text = "Crypto lender halts withdrawals\nThe platform said it paused withdrawals. \
                    Token prices fell 20%. Analysts are not optimistic.";
        let a = m().score(text);
        for _ in 0..5 {
            assert_eq!(a, SentimentModel::new().score(text));
        }
    }

    #[test]
    fn article_title_weighs_more() {
        let body = "The company published its report. It has offices in three countries. \
                    The report is available online.";
        let a = m().score(&format!("Exchange hacked, funds stolen\n{body}"));
        assert_eq!(a.label, Label::Bearish, "{a:?}");
        let b = m().score_article("", body);
        assert_eq!(b.label, Label::Neutral, "{b:?}");
    }
}
