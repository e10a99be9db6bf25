//! Topics from keyword groups, and key phrases from frequent noun-ish n-grams.
//!
//! Keywords are matched on stems (the sentiment tokenizer's), so "hacked", "hacks" and "hack"
//! all count, and phrases ("spot etf", "token unlock") match as token sequences. Every group is
//! written from first principles: the vocabulary a crypto-market article on that subject uses.

use crate::causal::is_movement_word;
use crate::hash::FastMap;
use crate::hash::round4;
use crate::text::{is_stop_word, words};
use crate::tokenize::{Token, tokenize};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One topic of an article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    /// 0..1, see [`topic_score`].
    pub score: f64,
    /// The group's keywords found, most frequent first (at most [`MAX_KEYWORDS`]).
    pub keywords: Vec<String>,
}

/// Topic name and keywords (surface forms; matched through the stemmer).
pub const TOPICS: &[(&str, &[&str])] = &[
    (
        "Institutional Investment / ETFs",
        &[
            "etf",
            "etfs",
            "spot etf",
            "etf inflows",
            "etf outflows",
            "inflows",
            "outflows",
            "institutional",
            "institutions",
            "asset manager",
            "fund",
            "blackrock",
            "fidelity",
            "grayscale",
            "ark invest",
            "vaneck",
            "treasury reserve",
            "corporate treasury",
            "microstrategy",
            "custody",
            "ishares",
            "ibit",
            "gbtc",
            "pension",
            "endowment",
            "allocation",
            "wall street",
        ],
    ),
    (
        "Regulation & Legal",
        &[
            "sec",
            "cftc",
            "regulator",
            "regulators",
            "regulation",
            "regulatory",
            "lawsuit",
            "sued",
            "sue",
            "court",
            "judge",
            "settlement",
            "enforcement",
            "compliance",
            "license",
            "licence",
            "ban",
            "banned",
            "legislation",
            "bill",
            "law",
            "lawmakers",
            "congress",
            "senate",
            "mica",
            "securities",
            "charges",
            "indictment",
            "fine",
            "fined",
            "probe",
            "investigation",
            "subpoena",
            "approval",
            "approve",
            "approved",
            "rejected",
            "gensler",
            "framework",
            "sanctions",
        ],
    ),
    (
        "Security & Hacks",
        &[
            "hack",
            "hacked",
            "hacker",
            "hackers",
            "exploit",
            "exploited",
            "breach",
            "stolen",
            "theft",
            "drained",
            "attack",
            "attacker",
            "vulnerability",
            "phishing",
            "scam",
            "rug pull",
            "private key",
            "compromised",
            "bridge exploit",
            "security",
            "lazarus",
            "ransomware",
            "fraud",
        ],
    ),
    (
        "Price Movement",
        &[
            "price",
            "prices",
            "rally",
            "rallied",
            "surge",
            "surged",
            "soar",
            "jump",
            "climb",
            "gain",
            "gains",
            "fell",
            "fall",
            "drop",
            "dropped",
            "plunge",
            "slump",
            "tumble",
            "crash",
            "decline",
            "rebound",
            "all-time high",
            "record high",
            "resistance",
            "support",
            "volatility",
            "sell-off",
            "selloff",
            "correction",
            "bull",
            "bear",
            "bullish",
            "bearish",
            "liquidations",
            "short squeeze",
            "percent",
            "trading",
        ],
    ),
    (
        "DeFi",
        &[
            "defi",
            "decentralized finance",
            "liquidity pool",
            "lending protocol",
            "yield",
            "staking",
            "restaking",
            "tvl",
            "total value locked",
            "dex",
            "amm",
            "uniswap",
            "aave",
            "curve",
            "lido",
            "makerdao",
            "smart contract",
            "protocol",
            "liquidity",
            "flash loan",
            "governance",
            "dao",
        ],
    ),
    (
        "Stablecoins",
        &[
            "stablecoin",
            "stablecoins",
            "tether",
            "usdt",
            "usdc",
            "dai",
            "peg",
            "depeg",
            "depegged",
            "redemptions",
            "reserves",
            "circle",
            "paxos",
            "algorithmic stablecoin",
            "terrausd",
            "cbdc",
            "digital euro",
            "digital dollar",
        ],
    ),
    (
        "Macro & Rates",
        &[
            "fed",
            "federal reserve",
            "fomc",
            "interest rate",
            "interest rates",
            "rate cut",
            "rate cuts",
            "rate hike",
            "rate hikes",
            "inflation",
            "cpi",
            "recession",
            "powell",
            "ecb",
            "central bank",
            "treasury yields",
            "yields",
            "bond",
            "bonds",
            "dollar",
            "dxy",
            "jobs report",
            "unemployment",
            "gdp",
            "liquidity",
            "tariffs",
            "monetary policy",
            "quantitative tightening",
            "easing",
        ],
    ),
    (
        "Exchanges & Listings",
        &[
            "exchange",
            "exchanges",
            "listing",
            "listed",
            "lists",
            "delisting",
            "delisted",
            "delist",
            "trading pair",
            "binance",
            "coinbase",
            "kraken",
            "okx",
            "bybit",
            "withdrawals",
            "deposits",
            "order book",
            "spot trading",
            "futures",
            "perpetual",
            "launchpool",
            "market maker",
        ],
    ),
    (
        "Mining & Halving",
        &[
            "mining",
            "miner",
            "miners",
            "hashrate",
            "hash rate",
            "halving",
            "block reward",
            "difficulty",
            "asic",
            "proof of work",
            "mining pool",
            "energy",
            "electricity",
            "rigs",
        ],
    ),
    (
        "Adoption & Payments",
        &[
            "adoption",
            "payments",
            "payment",
            "merchants",
            "merchant",
            "legal tender",
            "remittances",
            "visa",
            "mastercard",
            "paypal",
            "wallet",
            "wallets",
            "users",
            "partnership",
            "integration",
            "accept",
            "accepts",
            "mainstream",
            "retail",
        ],
    ),
    (
        "Tokenomics & Unlocks",
        &[
            "token unlock",
            "unlock",
            "unlocks",
            "vesting",
            "supply",
            "circulating supply",
            "emissions",
            "inflationary",
            "burn",
            "burned",
            "airdrop",
            "airdrops",
            "tokenomics",
            "dilution",
            "cliff",
            "treasury",
            "allocation",
            "max supply",
            "buyback",
        ],
    ),
];

/// Keywords reported per topic.
pub const MAX_KEYWORDS: usize = 6;
/// Topics reported per article.
pub const MAX_TOPICS: usize = 5;
/// Topics scoring below this are noise (one passing mention) and are left out.
pub const MIN_TOPIC_SCORE: f64 = 0.25;

/// Score in 0..1 = (1 − e^(−hits/3)) · (0.55 + 0.15·min(distinct, 3)), where `hits` counts
/// keyword matches (title matches count twice) and `distinct` the different keywords matched:
/// saturating in volume, and one keyword repeated is weaker evidence than several different ones.
pub fn topic_score(hits: f64, distinct: usize) -> f64 {
    let volume = 1.0 - (-hits / 3.0).exp();
    let variety = 0.55 + 0.15 * distinct.min(3) as f64;
    round4((volume * variety).clamp(0.0, 1.0))
}

#[derive(Debug, Clone)]
struct Keyword {
    stems: Vec<String>,
    topic: usize,
    display: usize,
}

/// Topic keyword tables compiled to stem sequences keyed by their first stem.
#[derive(Debug, Clone)]
pub struct TopicTables {
    by_first: FastMap<Vec<Keyword>>,
    /// Display form per keyword index (the first listed surface form of its stems).
    displays: Vec<String>,
}

impl Default for TopicTables {
    fn default() -> Self {
        Self::new()
    }
}

fn stems_of(phrase: &str) -> Vec<String> {
    tokenize(phrase)
        .into_iter()
        .filter(Token::is_word)
        .map(|t| t.stem)
        .collect()
}

impl TopicTables {
    pub fn new() -> Self {
        let mut t = Self {
            by_first: FastMap::default(),
            displays: Vec::new(),
        };
        let mut seen: HashMap<(usize, Vec<String>), ()> = HashMap::new();
        for (topic, (_, kws)) in TOPICS.iter().enumerate() {
            for kw in *kws {
                let stems = stems_of(kw);
                let Some(first) = stems.first().cloned() else {
                    continue;
                };
                if seen.insert((topic, stems.clone()), ()).is_some() {
                    continue; // "hack"/"hacked": one keyword
                }
                t.displays.push((*kw).to_string());
                let list = t.by_first.entry(first).or_default();
                list.push(Keyword {
                    stems,
                    topic,
                    display: t.displays.len() - 1,
                });
                list.sort_by_key(|k| std::cmp::Reverse(k.stems.len()));
            }
        }
        t
    }

    /// Topics of an article, highest score first (ties by name).
    pub fn extract(&self, title: &str, body: &str) -> Vec<Topic> {
        // per topic: hits, and per keyword display index: count
        let mut hits = vec![0.0f64; TOPICS.len()];
        let mut kw_counts: Vec<HashMap<usize, u32>> = vec![HashMap::new(); TOPICS.len()];
        for (text, weight) in [(title, 2.0), (body, 1.0)] {
            let toks = tokenize(text);
            let mut i = 0;
            while i < toks.len() {
                let mut advance = 1;
                if toks[i].is_word()
                    && let Some(list) = self.by_first.get(toks[i].stem.as_str())
                {
                    // Each topic counts its own longest keyword here: "allocation" is both
                    // institutional and tokenomics vocabulary.
                    let mut done = vec![false; TOPICS.len()];
                    for kw in list {
                        let n = kw.stems.len();
                        if done[kw.topic] || i + n > toks.len() {
                            continue;
                        }
                        if toks[i..i + n]
                            .iter()
                            .zip(&kw.stems)
                            .all(|(t, s)| t.is_word() && &t.stem == s)
                        {
                            done[kw.topic] = true;
                            hits[kw.topic] += weight;
                            *kw_counts[kw.topic].entry(kw.display).or_insert(0) += 1;
                            advance = advance.max(n);
                        }
                    }
                }
                i += advance;
            }
        }
        let mut out: Vec<Topic> = TOPICS
            .iter()
            .enumerate()
            .filter_map(|(k, (name, _))| {
                let score = topic_score(hits[k], kw_counts[k].len());
                if score < MIN_TOPIC_SCORE {
                    return None;
                }
                let mut kws: Vec<(&String, u32)> = kw_counts[k]
                    .iter()
                    .map(|(&d, &c)| (&self.displays[d], c))
                    .collect();
                kws.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                Some(Topic {
                    name: (*name).to_string(),
                    score,
                    keywords: kws
                        .into_iter()
                        .take(MAX_KEYWORDS)
                        .map(|(s, _)| s.clone())
                        .collect(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.name.cmp(&b.name))
        });
        out.truncate(MAX_TOPICS);
        out
    }
}

/// Key phrases reported per article.
pub const MAX_KEY_PHRASES: usize = 8;

/// Words that make an n-gram verb-ish or vague rather than a noun phrase.
fn is_weak(lower: &str) -> bool {
    lower.ends_with("ly")
        || lower.chars().all(|c| c.is_ascii_digit())
        || lower.len() < 2
        || matches!(
            lower,
            "rose"
                | "fell"
                | "rise"
                | "fall"
                | "falls"
                | "rises"
                | "added"
                | "told"
                | "made"
                | "make"
                | "makes"
                | "took"
                | "take"
                | "get"
                | "got"
                | "going"
                | "went"
                | "come"
                | "came"
                | "see"
                | "seen"
                | "saw"
                | "know"
                | "think"
                | "want"
                | "need"
                | "use"
                | "used"
                | "using"
                | "according"
                | "including"
                | "include"
                | "includes"
                | "reported"
                | "announced"
                | "noted"
                | "expected"
                | "set"
                | "sets"
                | "become"
                | "became"
                | "remain"
                | "remains"
                | "continue"
                | "continues"
                | "many"
                | "much"
                | "several"
                | "few"
                | "well"
                | "way"
                | "time"
                | "times"
                | "one"
                | "two"
                | "three"
                | "million"
                | "billion"
                | "thousand"
                | "percent"
                | "per"
                | "cent"
                | "mr"
                | "ms"
                | "inc"
                | "ltd"
                | "corp"
                | "week"
                | "month"
                | "months"
                | "years"
                | "days"
                | "hours"
                | "ago"
                | "later"
                | "earlier"
                | "around"
                | "amid"
        )
}

/// A verb form ("drained", "rising") rather than one of the participles crypto news uses as
/// nouns or adjectives ("mining", "listed companies", "decentralized exchange").
fn is_participle(lower: &str) -> bool {
    lower.len() > 4
        && (lower.ends_with("ed") || lower.ends_with("ing"))
        && !matches!(
            lower,
            "listed"
                | "unlisted"
                | "centralized"
                | "decentralized"
                | "centralised"
                | "decentralised"
                | "regulated"
                | "unregistered"
                | "registered"
                | "leveraged"
                | "staked"
                | "wrapped"
                | "automated"
                | "unrealized"
                | "realized"
                | "institutional"
                | "trading"
                | "mining"
                | "staking"
                | "restaking"
                | "lending"
                | "funding"
                | "pricing"
                | "borrowing"
                | "banking"
                | "licensing"
                | "offering"
                | "filing"
                | "hearing"
                | "meeting"
                | "earnings"
                | "holdings"
                | "spending"
                | "selling"
                | "buying"
        )
}

/// Phrases always reported when the article has that many candidates (see [`key_phrases`]).
pub const MIN_KEY_PHRASES: usize = 3;

/// Key phrases: 2–3-word runs inside one clause with no stop word, verb-ish or movement word.
/// Weight: 1.5 per title occurrence, 1 per body occurrence, +25% per extra word; a phrase is
/// kept when its weight reaches 2 (said twice, or in the title and the body), best first. A
/// phrase nested in a longer one that is used at least as often merges into the longer
/// ("spot etf" into "bitcoin spot etf"). Short articles repeat little, so up to [`MIN_KEY_PHRASES`] are filled with the
/// earliest body phrases (the lead states the news); title-only phrases are never used, as
/// Title Case headlines make verbs look like names. The most frequent spelling is shown.
pub fn key_phrases(title: &str, body: &str) -> Vec<String> {
    struct Agg {
        weighted: f64,
        /// Word position of the first body occurrence (`usize::MAX` if only in the title).
        first_body: usize,
        first: usize,
        words: usize,
        spellings: Vec<(String, u32)>,
    }
    let mut agg: FastMap<Agg> = FastMap::default();
    let mut order = 0usize;
    let (mut key, mut spelling) = (String::new(), String::new());
    for (text, weight) in [(title, 1.5), (body, 1.0)] {
        let ws = words(text);
        let lower: Vec<String> = ws.iter().map(|w| w.text.to_lowercase()).collect();
        let ok: Vec<bool> = lower
            .iter()
            .map(|l| !is_stop_word(l) && !is_weak(l) && !is_movement_word(l))
            .collect();
        for i in 0..ws.len() {
            order += 1;
            for n in 2..=3 {
                if i + n > ws.len() || !ok[i..i + n].iter().all(|&b| b) {
                    continue;
                }
                // "-ed"/"-ing" words are verbs here unless known as nouns or adjectives.
                if lower[i..i + n].iter().any(|l| is_participle(l)) {
                    continue;
                }
                // Never cut a name in two ("Bybit CEO Ben | Zhou").
                let joined = |a: usize, b: usize| {
                    !ws[b].boundary_before
                        && ws[a].is_capitalised()
                        && ws[b].is_capitalised()
                        && !is_stop_word(&lower[a])
                };
                if (i > 0 && joined(i - 1, i)) || (i + n < ws.len() && joined(i + n - 1, i + n)) {
                    continue;
                }
                if ws[i + 1..i + n].iter().any(|w| w.boundary_before) {
                    continue;
                }
                // Candidates far outnumber distinct phrases: build the key in a reused buffer
                // and allocate only for a phrase or spelling not seen before.
                key.clear();
                for (k, l) in lower[i..i + n].iter().enumerate() {
                    if k > 0 {
                        key.push(' ');
                    }
                    key.push_str(l);
                }
                spelling.clear();
                for (k, w) in ws[i..i + n].iter().enumerate() {
                    if k > 0 {
                        spelling.push(' ');
                    }
                    spelling.push_str(w.text);
                }
                if !agg.contains_key(key.as_str()) {
                    agg.insert(
                        key.clone(),
                        Agg {
                            weighted: 0.0,
                            first_body: usize::MAX,
                            first: order,
                            words: n,
                            spellings: Vec::new(),
                        },
                    );
                }
                let Some(a) = agg.get_mut(key.as_str()) else {
                    continue;
                };
                a.weighted += weight;
                if weight == 1.0 {
                    a.first_body = a.first_body.min(order);
                }
                match a.spellings.iter_mut().find(|(s, _)| *s == spelling) {
                    Some((_, c)) => *c += 1,
                    None => a.spellings.push((spelling.clone(), 1)),
                }
            }
        }
    }
    // (key, score, weighted, first, first_body, spelling)
    let mut ranked: Vec<(String, f64, f64, usize, usize, String)> = agg
        .into_iter()
        .map(|(key, a)| {
            let mut best = &a.spellings[0];
            for s in &a.spellings {
                if s.1 > best.1 {
                    best = s;
                }
            }
            let score = a.weighted * (1.0 + 0.25 * (a.words as f64 - 1.0));
            (
                key,
                score,
                a.weighted,
                a.first,
                a.first_body,
                best.0.clone(),
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.3.cmp(&b.3)));
    let padded = |k: &str| format!(" {k} ");
    let mut out: Vec<(String, f64, String)> = Vec::new();
    for (key, _, weighted, _, _, spelling) in ranked.iter().filter(|r| r.2 >= 2.0) {
        let p = padded(key);
        // Nested phrases ("spot etf" in "bitcoin spot etf") are one phrase, the longer, unless
        // the shorter one is used more often than the longer.
        let nested = |(k, w, _): &(String, f64, String)| {
            let q = padded(k);
            if q.contains(&p) {
                *weighted <= *w + 1e-9
            } else {
                p.contains(&q) && *w <= *weighted + 1e-9
            }
        };
        match out.iter().position(nested) {
            Some(i) => {
                if key.len() > out[i].0.len() {
                    out[i] = (key.clone(), *weighted, spelling.clone());
                }
            }
            None => out.push((key.clone(), *weighted, spelling.clone())),
        }
        if out.len() == MAX_KEY_PHRASES {
            break;
        }
    }
    if out.len() < MIN_KEY_PHRASES {
        let mut lead: Vec<&(String, f64, f64, usize, usize, String)> = ranked
            .iter()
            .filter(|r| r.4 != usize::MAX && r.2 < 2.0)
            .collect();
        // Earliest first; at the same word, the longer phrase.
        lead.sort_by_key(|r| (r.4, std::cmp::Reverse(r.0.len())));
        for (key, _, weighted, _, _, spelling) in lead {
            let p = padded(key);
            // Skip anything overlapping a chosen phrase by a word ("crypto exchanges" after
            // "largest crypto exchanges").
            let overlaps = out
                .iter()
                .any(|(k, _, _)| k.split(' ').any(|w| p.contains(&padded(w))));
            if !overlaps {
                out.push((key.clone(), *weighted, spelling.clone()));
            }
            if out.len() == MIN_KEY_PHRASES {
                break;
            }
        }
    }
    out.into_iter().map(|(_, _, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etf_article_is_institutional() {
        let t = TopicTables::new();
        let topics = t.extract(
            "Bitcoin ETF inflows hit record as BlackRock fund grows",
            "Spot ETF inflows continued for a fifth day. Institutional demand from asset \
             managers rose while the price rallied.",
        );
        assert_eq!(
            topics[0].name, "Institutional Investment / ETFs",
            "{topics:?}"
        );
        assert!(topics[0].keywords.iter().any(|k| k == "etf inflows"));
        assert!(topics.iter().any(|t| t.name == "Price Movement"));
        assert!(topics.iter().all(|t| (0.0..=1.0).contains(&t.score)));
    }

    #[test]
    fn inflections_and_phrases_match() {
        let t = TopicTables::new();
        let topics = t.extract("Exchange hacked; hackers drained wallets", "");
        assert_eq!(topics[0].name, "Security & Hacks", "{topics:?}");
        let topics = t.extract("Large token unlocks loom", "The token unlock adds supply.");
        assert_eq!(topics[0].name, "Tokenomics & Unlocks", "{topics:?}");
    }

    #[test]
    fn score_saturates() {
        assert_eq!(topic_score(0.0, 0), 0.0);
        assert!(topic_score(1.0, 1) < topic_score(3.0, 3));
        assert!(topic_score(100.0, 10) <= 1.0);
    }

    #[test]
    fn key_phrases_are_noun_runs() {
        let kp = key_phrases(
            "Bitcoin Spot ETF Surges As Record Inflows Continue",
            "The Bitcoin spot ETF drew money. Analysts said the Bitcoin spot ETF matters, \
             and institutional adoption grows. Institutional adoption is key.",
        );
        assert_eq!(kp[0], "Bitcoin spot ETF", "{kp:?}");
        assert!(kp.iter().any(|p| p == "institutional adoption"), "{kp:?}");
        assert!(
            !kp.iter().any(|p| p == "spot ETF" || p == "Bitcoin spot"),
            "{kp:?}"
        );
        assert!(
            !kp.iter()
                .any(|p| p.contains("the ") || p.contains("Surges")),
            "{kp:?}"
        );
        // Nothing repeated: the lead's first phrases, never the Title Case headline's.
        let kp = key_phrases(
            "Exchange Hack Rattles Traders",
            "Hackers drained hot wallets at a large crypto exchange. Customer funds are safe.",
        );
        assert_eq!(
            kp,
            ["hot wallets", "large crypto exchange", "Customer funds"]
        );
    }
}
