//! Hand-written sentiment lexicon for financial and crypto-market news.
//!
//! Why hand-written: the training corpus (company news) never mentions hacks, depegs or ETF
//! flows, so the hashed word features cannot learn them. The lexicon maps such events onto the
//! same two dense features ("positive lexicon mass", "negative lexicon mass") whose weights *are*
//! learned from the corpus, so a crypto event inherits the strength the model learned for
//! "profit warning" or "strong growth". Every entry is written from first principles (what the
//! event does to holders of the asset), not extracted from any dataset.
//!
//! Scores are in roughly -2.5..2.5; entries are surface forms, stemmed at load time with the same
//! stemmer as the text, so inflections listed or not usually match.

use crate::tokenize::{Token, stem};

use crate::hash::{FastMap, FastSet};

/// Where an entry comes from, reported in evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Domain {
    Finance,
    Crypto,
}

/// General financial-news polarity (after Loughran-McDonald's idea that finance needs its own
/// word list: "liability" or "tax" are not negative here, "loss" and "warning" are).
const FINANCE: &[(&str, f32)] = &[
    // positive
    ("growth", 1.0),
    ("grow", 0.8),
    ("grew", 0.8),
    ("gain", 0.8),
    ("gains", 0.8),
    ("improve", 1.0),
    ("improved", 1.0),
    ("improvement", 1.0),
    ("strong", 1.0),
    ("strengthen", 1.0),
    ("robust", 1.0),
    ("record high", 1.3),
    ("record level", 1.2),
    ("record sales", 1.3),
    ("record profit", 1.3),
    ("record year", 1.2),
    ("record result", 1.3),
    ("topped", 1.0),
    ("above expectations", 1.3),
    ("above estimates", 1.3),
    ("promising", 1.0),
    ("in the black", 1.0),
    ("strengthening", 1.0),
    ("well positioned", 1.0),
    ("pleased", 1.0),
    ("welcome", 0.6),
    ("award", 0.8),
    ("rise", 0.7),
    ("rose", 0.7),
    ("risen", 0.7),
    ("increase", 0.6),
    ("increased", 0.6),
    ("higher", 0.6),
    ("up", 0.3),
    ("boost", 1.0),
    ("beat", 1.0),
    ("beats", 1.0),
    ("exceed", 1.0),
    ("exceeded", 1.0),
    ("outperform", 1.2),
    ("upgrade", 1.0),
    ("upgraded", 1.0),
    ("win", 1.0),
    ("won", 1.0),
    ("awarded", 0.9),
    ("expand", 0.7),
    ("expansion", 0.7),
    ("success", 1.0),
    ("successful", 1.0),
    ("successfully", 0.8),
    ("positive", 1.0),
    ("optimistic", 1.0),
    ("surge", 1.3),
    ("surged", 1.3),
    ("soar", 1.5),
    ("soared", 1.5),
    ("rally", 1.2),
    ("rallied", 1.2),
    ("jump", 1.2),
    ("jumped", 1.2),
    ("climb", 0.9),
    ("climbed", 0.9),
    ("double", 1.0),
    ("doubled", 1.0),
    ("recover", 0.9),
    ("recovery", 0.9),
    ("rebound", 1.0),
    ("profitable", 1.0),
    ("profitability", 0.6),
    ("benefit", 0.8),
    ("opportunity", 0.6),
    ("favorable", 1.0),
    ("favourable", 1.0),
    ("efficiency", 0.5),
    ("best", 1.0),
    ("better", 0.8),
    ("good", 0.8),
    ("excellent", 1.3),
    ("outstanding", 1.2),
    ("leading", 0.5),
    ("breakthrough", 1.2),
    ("bullish", 1.8),
    ("buyback", 1.0),
    ("dividend increase", 1.0),
    ("raised guidance", 1.5),
    ("raises guidance", 1.5),
    ("raised its outlook", 1.5),
    ("swung to a profit", 1.5),
    ("returned to profit", 1.5),
    ("all-time high", 1.5),
    ("new high", 1.2),
    ("upbeat", 1.2),
    ("strongest", 1.2),
    ("attractive", 0.6),
    ("momentum", 0.6),
    // negative
    ("loss", -1.0),
    ("losses", -1.0),
    ("decline", -0.9),
    ("declined", -0.9),
    ("decrease", -0.8),
    ("decreased", -0.8),
    ("fall", -0.9),
    ("fell", -0.9),
    ("fallen", -0.9),
    ("drop", -0.9),
    ("dropped", -0.9),
    ("down", -0.5),
    ("lower", -0.6),
    ("weak", -1.0),
    ("weaker", -1.0),
    ("weakness", -1.0),
    ("weakened", -1.0),
    ("cut", -0.6),
    ("cuts", -0.6),
    ("layoff", -1.3),
    ("layoffs", -1.3),
    ("lay off", -1.3),
    ("laid off", -1.3),
    ("redundancy", -1.2),
    ("redundancies", -1.2),
    ("job cuts", -1.3),
    ("temporary layoffs", -1.3),
    ("warn", -1.0),
    ("warning", -1.2),
    ("profit warning", -2.0),
    ("downgrade", -1.2),
    ("downgraded", -1.2),
    ("lawsuit", -1.2),
    ("sued", -1.2),
    ("fraud", -2.0),
    ("bankrupt", -2.0),
    ("bankruptcy", -2.0),
    ("insolvency", -2.0),
    ("insolvent", -2.0),
    ("default", -1.5),
    ("delay", -0.8),
    ("delayed", -0.8),
    ("negative", -1.0),
    ("slump", -1.3),
    ("plunge", -1.5),
    ("plunged", -1.5),
    ("tumble", -1.4),
    ("tumbled", -1.4),
    ("crash", -1.8),
    ("miss", -1.0),
    ("missed", -1.0),
    ("deficit", -0.8),
    ("impairment", -1.0),
    ("writedown", -1.0),
    ("write-down", -1.0),
    ("closure", -1.0),
    ("shut down", -1.2),
    ("terminate", -0.8),
    ("dispute", -0.9),
    ("fine", -0.6),
    ("penalty", -1.0),
    ("problem", -0.8),
    ("problems", -0.8),
    ("difficult", -0.9),
    ("uncertainty", -0.8),
    ("concern", -0.7),
    ("concerns", -0.7),
    ("worse", -1.1),
    ("worst", -1.3),
    ("poor", -1.1),
    ("disappointing", -1.3),
    ("disappointed", -1.2),
    ("struggle", -1.0),
    ("suspend", -1.0),
    ("suspended", -1.0),
    ("halt", -1.0),
    ("halted", -1.0),
    ("recall", -1.0),
    ("strike", -0.9),
    ("investigation", -0.9),
    ("probe", -1.0),
    ("collapse", -1.8),
    ("collapsed", -1.8),
    ("failure", -1.3),
    ("slowdown", -1.0),
    ("recession", -1.3),
    ("downturn", -1.2),
    ("bearish", -1.8),
    ("sell-off", -1.4),
    ("selloff", -1.4),
    ("turned to a loss", -1.5),
    ("swung to a loss", -1.5),
    ("lowered guidance", -1.5),
    ("cut its outlook", -1.5),
    ("below expectations", -1.3),
    ("shortfall", -1.0),
    ("pressure", -0.6),
    ("headwinds", -0.9),
    ("slower", -0.7),
    ("reduction", -0.6),
    ("reductions", -0.8),
    ("personnel negotiations", -1.2),
    ("employee negotiations", -1.2),
    ("codetermination negotiations", -1.2),
    ("staff reduction", -1.4),
    ("staff reductions", -1.4),
    ("headcount reduction", -1.4),
    ("personnel reductions", -1.4),
    ("dismissed", -1.0),
    ("painful", -1.2),
    ("disappointment", -1.3),
    ("trouble", -1.0),
    ("troubles", -1.0),
    ("upset", -1.0),
    ("oversupply", -1.0),
    ("threat", -1.0),
    ("threatening", -1.0),
    ("in the red", -1.5),
    ("in red", -1.5),
    ("below estimates", -1.3),
    ("below the analyst estimate", -1.3),
    ("hit by", -1.0),
    ("hurt", -1.2),
    ("weighed on", -1.0),
    ("stressful", -1.0),
    ("canceled", -0.9),
    ("cancelled", -0.9),
    ("ending", -0.4),
    ("reduce", -0.5),
    ("reduced", -0.5),
];

/// Crypto-market events, scored by their first-order effect on holders of the asset named.
const CRYPTO: &[(&str, f32)] = &[
    // flows and demand
    ("etf inflows", 2.0),
    ("inflows", 1.5),
    ("inflow", 1.5),
    ("net inflows", 1.8),
    ("record inflows", 2.2),
    ("etf outflows", -2.0),
    ("outflows", -1.5),
    ("outflow", -1.5),
    ("net outflows", -1.8),
    ("whale accumulation", 1.8),
    ("whales accumulate", 1.8),
    ("whales accumulating", 1.8),
    ("accumulation", 1.2),
    ("accumulating", 1.0),
    ("institutional demand", 1.5),
    ("treasury purchase", 1.3),
    ("whale dump", -1.8),
    ("whales dump", -1.8),
    ("whale selling", -1.5),
    ("dump", -1.5),
    ("dumped", -1.5),
    ("dumping", -1.5),
    ("short squeeze", 1.6),
    ("capitulation", -1.6),
    ("liquidation", -1.5),
    ("liquidations", -1.5),
    ("liquidated", -1.5),
    ("long liquidations", -1.8),
    ("short liquidations", 1.2),
    // regulation and macro
    ("etf approval", 2.2),
    ("approves etf", 2.2),
    ("approved etf", 2.2),
    ("etf approved", 2.2),
    ("etf rejected", -2.0),
    ("rejects etf", -2.0),
    ("etf rejection", -2.0),
    ("etf delayed", -1.2),
    ("sec approves", 2.0),
    ("sec approved", 2.0),
    ("sec approval", 2.0),
    ("regulatory approval", 1.3),
    ("wins approval", 1.5),
    ("receives approval", 1.3),
    ("sec rejects", -2.0),
    ("sec delays", -1.3),
    ("sec lawsuit", -2.0),
    ("sec sues", -2.0),
    ("sec charges", -1.8),
    ("sues", -1.3),
    ("charged", -1.2),
    ("enforcement action", -1.5),
    ("crackdown", -1.6),
    ("ban", -1.5),
    ("banned", -1.5),
    ("bans", -1.5),
    ("sanctioned", -1.3),
    ("seized", -1.3),
    ("lawsuit dismissed", 1.8),
    ("dismisses lawsuit", 1.8),
    ("wins lawsuit", 1.8),
    ("court victory", 1.6),
    ("regulatory clarity", 1.3),
    ("rate cut", 1.5),
    ("rate cuts", 1.5),
    ("cuts rates", 1.5),
    ("cut rates", 1.5),
    ("rate hike", -1.5),
    ("rate hikes", -1.5),
    ("hikes rates", -1.5),
    ("raised rates", -1.5),
    // security and infrastructure
    ("hack", -2.2),
    ("hacked", -2.2),
    ("hacker", -1.8),
    ("hackers", -1.8),
    ("exploit", -2.0),
    ("exploited", -2.0),
    ("drained", -2.0),
    ("stolen", -2.0),
    ("theft", -2.0),
    ("breach", -1.8),
    ("rug pull", -2.2),
    ("rugpull", -2.2),
    ("scam", -2.0),
    ("exit scam", -2.4),
    ("ponzi", -2.2),
    ("vulnerability", -1.3),
    ("outage", -1.5),
    ("downtime", -1.2),
    ("halts withdrawals", -2.2),
    ("halted withdrawals", -2.2),
    ("suspends withdrawals", -2.2),
    ("withdrawals halted", -2.2),
    ("withdrawals paused", -2.0),
    ("frozen", -1.3),
    ("contagion", -1.8),
    ("bank run", -2.0),
    ("chapter 11", -2.0),
    // stablecoins, supply and listings
    ("depeg", -2.2),
    ("depegged", -2.2),
    ("depegs", -2.2),
    ("lost its peg", -2.2),
    ("loses peg", -2.2),
    ("token unlock", -1.4),
    ("token unlocks", -1.4),
    ("unlock", -1.0),
    ("unlocks", -1.0),
    ("dilution", -1.2),
    ("delist", -2.0),
    ("delisted", -2.0),
    ("delisting", -2.0),
    ("delists", -2.0),
    ("listing", 1.0),
    ("lists", 0.9),
    ("will list", 1.3),
    ("listed on", 1.0),
    ("airdrop", 1.0),
    ("halving", 1.2),
    ("token burn", 1.0),
    ("burn", 0.5),
    ("mainnet launch", 1.0),
    ("adoption", 1.2),
    ("partnership", 0.8),
    ("integration", 0.6),
    ("golden cross", 1.3),
    ("death cross", -1.3),
    ("breakout", 1.2),
    ("reclaims", 1.0),
    ("fud", -1.2),
    ("pump", 0.8),
];

/// Quantities that are good for the company/asset when they go up (+1) or down (-1).
/// Combined with a direction word ("profit fell", "loss narrowed", "costs decreased").
const METRICS: &[(&str, f32)] = &[
    ("profit", 1.0),
    ("profits", 1.0),
    ("sales", 1.0),
    ("revenue", 1.0),
    ("revenues", 1.0),
    ("turnover", 1.0),
    ("earnings", 1.0),
    ("income", 1.0),
    ("ebit", 1.0),
    ("ebitda", 1.0),
    ("eps", 1.0),
    ("margin", 1.0),
    ("margins", 1.0),
    ("orders", 1.0),
    ("order", 1.0),
    ("intake", 1.0),
    ("backlog", 1.0),
    ("dividend", 1.0),
    ("result", 1.0),
    ("results", 1.0),
    ("cash flow", 1.0),
    ("market share", 1.0),
    ("volume", 0.7),
    ("volumes", 0.7),
    ("deliveries", 1.0),
    ("demand", 1.0),
    ("price", 0.6),
    ("prices", 0.6),
    ("shares", 0.8),
    ("share price", 1.0),
    ("stock", 0.8),
    ("value", 0.6),
    ("traffic", 0.8),
    ("passengers", 0.8),
    ("customers", 0.8),
    ("subscribers", 0.8),
    ("users", 0.8),
    ("tvl", 1.0),
    ("hashrate", 0.8),
    ("productivity", 1.0),
    ("occupancy", 1.0),
    ("loss", -1.0),
    ("losses", -1.0),
    ("cost", -1.0),
    ("costs", -1.0),
    ("expenses", -1.0),
    ("debt", -1.0),
    ("unemployment", -1.0),
    ("liabilities", -0.8),
    ("churn", -1.0),
    ("impairment", -1.0),
    ("provisions", -0.8),
    ("inflation", -0.7),
    ("supply", -0.5),
];

/// Direction words: +1 the quantity went up, -1 it went down.
const DIRECTIONS: &[(&str, f32)] = &[
    ("rise", 1.0),
    ("rose", 1.0),
    ("risen", 1.0),
    ("increase", 1.0),
    ("increased", 1.0),
    ("grew", 1.0),
    ("grow", 1.0),
    ("growth", 1.0),
    ("up", 1.0),
    ("higher", 1.0),
    ("improve", 1.0),
    ("jump", 1.0),
    ("jumped", 1.0),
    ("surge", 1.0),
    ("surged", 1.0),
    ("climb", 1.0),
    ("climbed", 1.0),
    ("double", 1.0),
    ("doubled", 1.0),
    ("advance", 1.0),
    ("advanced", 1.0),
    ("gain", 1.0),
    ("gained", 1.0),
    ("expand", 1.0),
    ("expanded", 1.0),
    ("boost", 1.0),
    ("boosted", 1.0),
    ("soar", 1.0),
    ("soared", 1.0),
    ("widen", 1.0),
    ("widened", 1.0),
    ("tripled", 1.0),
    ("fall", -1.0),
    ("fell", -1.0),
    ("fallen", -1.0),
    ("decrease", -1.0),
    ("decreased", -1.0),
    ("decline", -1.0),
    ("declined", -1.0),
    ("drop", -1.0),
    ("dropped", -1.0),
    ("down", -1.0),
    ("lower", -1.0),
    ("reduce", -1.0),
    ("reduced", -1.0),
    ("shrink", -1.0),
    ("shrank", -1.0),
    ("slip", -1.0),
    ("slipped", -1.0),
    ("slump", -1.0),
    ("slumped", -1.0),
    ("plunge", -1.0),
    ("plunged", -1.0),
    ("weaken", -1.0),
    ("weakened", -1.0),
    ("contract", -1.0),
    ("contracted", -1.0),
    ("narrow", -1.0),
    ("narrowed", -1.0),
    ("halve", -1.0),
    ("halved", -1.0),
    ("cut", -1.0),
    ("tumble", -1.0),
    ("tumbled", -1.0),
    ("deteriorate", -1.0),
    ("deteriorated", -1.0),
];

/// Words that open a negation scope over the next few words.
const NEGATORS: &[&str] = &[
    "not", "no", "never", "without", "neither", "nor", "none", "cannot", "lack", "lacks", "fail",
    "fails", "failed", "unable", "hardly",
];

/// Multipliers for a nearby lexicon hit: intensifiers (>1) and diminishers (<1).
const MODIFIERS: &[(&str, f32)] = &[
    ("very", 1.3),
    ("sharply", 1.5),
    ("sharp", 1.4),
    ("significantly", 1.4),
    ("significant", 1.3),
    ("substantially", 1.4),
    ("strongly", 1.4),
    ("massive", 1.5),
    ("huge", 1.4),
    ("extremely", 1.5),
    ("heavily", 1.3),
    ("dramatically", 1.5),
    ("considerably", 1.3),
    ("major", 1.2),
    ("biggest", 1.4),
    ("slightly", 0.5),
    ("slight", 0.5),
    ("marginally", 0.5),
    ("marginal", 0.5),
    ("somewhat", 0.7),
    ("modestly", 0.6),
    ("modest", 0.6),
    ("partly", 0.7),
    ("mildly", 0.6),
    ("minor", 0.6),
];

/// Negation reaches this many words forward (not past clause punctuation).
pub const NEGATION_SCOPE: usize = 3;
/// Longest lexicon phrase, in tokens.
const MAX_PHRASE: usize = 4;

/// One lexicon match in a token sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct LexHit {
    pub start: usize,
    pub len: usize,
    /// Final score after modifiers and negation.
    pub score: f32,
    pub negated: bool,
    pub domain: Domain,
}

/// The lexicon tables keyed by stemmed phrase ("etf inflow", "hack").
#[derive(Debug)]
pub struct Lexicon {
    polarity: FastMap<(f32, Domain)>,
    /// First stems of multi-word phrases: longer matches are only tried from these.
    phrase_starts: FastSet,
    metrics: FastMap<f32>,
    directions: FastMap<f32>,
    negators: FastSet,
    modifiers: FastMap<f32>,
}

fn phrase_key(phrase: &str) -> String {
    let mut key = String::new();
    for w in phrase.split([' ', '-']).filter(|w| !w.is_empty()) {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(&stem(&w.to_lowercase()));
    }
    key
}

impl Default for Lexicon {
    fn default() -> Self {
        Self::new()
    }
}

impl Lexicon {
    /// Builds the lookup tables; the first entry for a stem wins, so duplicates from listing
    /// several inflections are harmless.
    pub fn new() -> Self {
        let mut polarity = FastMap::default();
        let mut phrase_starts = FastSet::default();
        for (dom, table) in [(Domain::Crypto, CRYPTO), (Domain::Finance, FINANCE)] {
            for &(p, s) in table {
                let key = phrase_key(p);
                if let Some((first, _)) = key.split_once(' ') {
                    phrase_starts.insert(first.to_string());
                }
                polarity.entry(key).or_insert((s, dom));
            }
        }
        let single = |t: &[(&str, f32)]| -> FastMap<f32> {
            let mut m = FastMap::default();
            for &(p, s) in t {
                m.entry(phrase_key(p)).or_insert(s);
            }
            m
        };
        Self {
            polarity,
            phrase_starts,
            metrics: single(METRICS),
            directions: single(DIRECTIONS),
            negators: NEGATORS.iter().map(|w| stem(w)).collect(),
            modifiers: single(MODIFIERS),
        }
    }

    pub fn is_negator(&self, stem: &str) -> bool {
        self.negators.contains(stem)
    }
    pub fn direction(&self, stem: &str) -> Option<f32> {
        self.directions.get(stem).copied()
    }
    pub fn modifier(&self, stem: &str) -> Option<f32> {
        self.modifiers.get(stem).copied()
    }

    /// Metric polarity of the phrase starting at `i` (checks two-word metrics first).
    pub fn metric_at(&self, tokens: &[Token], i: usize, buf: &mut String) -> Option<f32> {
        if i + 1 < tokens.len()
            && tokens[i + 1].is_word()
            && matches!(tokens[i].stem.as_str(), "cash" | "market" | "share")
        {
            buf.clear();
            buf.push_str(&tokens[i].stem);
            buf.push(' ');
            buf.push_str(&tokens[i + 1].stem);
            if let Some(&p) = self.metrics.get(buf.as_str()) {
                return Some(p);
            }
        }
        self.metrics.get(tokens[i].stem.as_str()).copied()
    }

    /// For each token, whether it lies inside a negation scope.
    pub fn negation_mask(&self, tokens: &[Token]) -> Vec<bool> {
        let mut mask = vec![false; tokens.len()];
        let mut remaining = 0usize;
        for (i, t) in tokens.iter().enumerate() {
            if t.is_clause() {
                remaining = 0;
                continue;
            }
            if remaining > 0 {
                mask[i] = true;
                remaining -= 1;
            }
            if t.is_word() && self.is_negator(&t.stem) {
                remaining = NEGATION_SCOPE;
            }
        }
        mask
    }

    /// Greedy longest-match of lexicon phrases, with modifiers (within two words either side)
    /// and negation (a hit starting inside a negation scope flips and shrinks, as "not good" is
    /// weaker than "bad").
    pub fn hits(&self, tokens: &[Token], negated: &[bool]) -> Vec<LexHit> {
        let mut out = Vec::new();
        let mut key = String::with_capacity(48);
        let mut i = 0;
        while i < tokens.len() {
            if !tokens[i].is_word() {
                i += 1;
                continue;
            }
            let mut matched: Option<(usize, f32, Domain)> = None;
            let max_len = if self.phrase_starts.contains(tokens[i].stem.as_str()) {
                MAX_PHRASE.min(tokens.len() - i)
            } else {
                1
            };
            for len in (1..=max_len).rev() {
                if !tokens[i..i + len].iter().all(|t| t.is_word()) {
                    continue;
                }
                key.clear();
                for (k, t) in tokens[i..i + len].iter().enumerate() {
                    if k > 0 {
                        key.push(' ');
                    }
                    key.push_str(&t.stem);
                }
                if let Some(&(s, d)) = self.polarity.get(key.as_str()) {
                    matched = Some((len, s, d));
                    break;
                }
            }
            if let Some((len, base, domain)) = matched {
                let mut mult = 1.0f32;
                let lo = i.saturating_sub(2);
                let hi = (i + len + 2).min(tokens.len());
                for (j, t) in tokens.iter().enumerate().take(hi).skip(lo) {
                    if (j < i || j >= i + len)
                        && t.is_word()
                        && let Some(m) = self.modifier(&t.stem)
                    {
                        mult *= m;
                    }
                }
                let neg = negated.get(i).copied().unwrap_or(false);
                let score = base * mult.clamp(0.25, 2.0) * if neg { -0.8 } else { 1.0 };
                out.push(LexHit {
                    start: i,
                    len,
                    score,
                    negated: neg,
                    domain,
                });
                i += len;
            } else {
                i += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::tokenize;

    #[test]
    fn crypto_phrases_match_inflections() {
        let lx = Lexicon::new();
        let toks = tokenize("Exchange was hacked as the stablecoin depegged and ETF outflows grew");
        let mask = lx.negation_mask(&toks);
        let hits = lx.hits(&toks, &mask);
        assert!(hits.len() >= 3, "{hits:?}");
        assert!(
            hits.iter()
                .all(|h| h.score < 0.0 || h.domain == Domain::Finance)
        );
    }

    #[test]
    fn negation_flips_and_modifiers_scale() {
        let lx = Lexicon::new();
        let toks = tokenize("not bullish");
        let hits = lx.hits(&toks, &lx.negation_mask(&toks));
        assert!(hits[0].negated && hits[0].score < 0.0);
        let strong = tokenize("sales fell sharply");
        let weak = tokenize("sales fell slightly");
        let s = lx.hits(&strong, &lx.negation_mask(&strong))[0].score;
        let w = lx.hits(&weak, &lx.negation_mask(&weak))[0].score;
        assert!(s < w && w < 0.0);
    }
}
