//! Named entities: cryptocurrencies (symbols through the normalizer's alias table, the single
//! source of truth for which names map to which trading pair), exchanges, regulators and other
//! organisations and people from hand-written gazetteers, plus a capitalised-span heuristic for
//! people and organisations the gazetteers do not know.
//!
//! Matching is on whole words, longest entry first, so "Binance Coin" is the coin and "Binance"
//! the exchange, and "Bitcoin Cash" is not Bitcoin. Aliases of one entity ("Bitcoin", "BTC")
//! merge into one entry whose `count` is the total number of mentions.

use crate::aliases::{AliasCase, SymbolAliases};
use crate::hash::FastMap;
use crate::hash::round4;
use crate::text::{Word, is_stop_word, words};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Entity classes of the seed's `analysis_results.entities[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    Cryptocurrency,
    Exchange,
    Regulator,
    Organization,
    Person,
    Location,
}

/// One entity of an article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Canonical name ("Bitcoin" for "BTC" and "bitcoins").
    pub text: String,
    #[serde(rename = "type")]
    pub kind: EntityType,
    /// Trading symbol from the alias table (`BTCUSDT`); `null` for everything else.
    pub symbol: Option<String>,
    /// Mentions in title and body.
    pub count: u32,
    /// 0..1, see [`relevance`].
    pub relevance: f64,
}

/// How an entry must be written to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// Any case; the last word may take a plural "s".
    Insensitive,
    /// Exactly as listed (tickers, acronyms: "SEC" but not "sec").
    Exact,
    /// Only as a cashtag (`$SOL`).
    Cashtag,
    /// Case-insensitive but the first letter must be upper case: "Kraken", "Gemini", "Fed"
    /// are names only when capitalised.
    Capitalised,
}

impl From<AliasCase> for Case {
    fn from(c: AliasCase) -> Self {
        match c {
            AliasCase::Insensitive => Case::Insensitive,
            AliasCase::Exact => Case::Exact,
            AliasCase::Cashtag => Case::Cashtag,
        }
    }
}

/// Written from first principles: the names a crypto-market reader would recognise.
/// `(canonical name, type, aliases)`; aliases are matched by [`Case::Capitalised`] unless they are
/// all capitals (then [`Case::Exact`]).
const GAZETTEER: &[(&str, EntityType, &[&str])] = {
    use EntityType::*;
    &[
        // Exchanges and trading venues.
        ("Binance", Exchange, &["Binance", "Binance.US"]),
        ("Coinbase", Exchange, &["Coinbase"]),
        ("Kraken", Exchange, &["Kraken"]),
        ("OKX", Exchange, &["OKX", "OKEx"]),
        ("Bybit", Exchange, &["Bybit"]),
        ("Bitfinex", Exchange, &["Bitfinex"]),
        ("Bitstamp", Exchange, &["Bitstamp"]),
        ("Gemini", Exchange, &["Gemini"]),
        ("KuCoin", Exchange, &["KuCoin"]),
        ("HTX", Exchange, &["Huobi", "HTX"]),
        ("Gate.io", Exchange, &["Gate.io"]),
        ("Bitget", Exchange, &["Bitget"]),
        ("Crypto.com", Exchange, &["Crypto.com"]),
        ("Upbit", Exchange, &["Upbit"]),
        ("Bithumb", Exchange, &["Bithumb"]),
        ("FTX", Exchange, &["FTX"]),
        ("Deribit", Exchange, &["Deribit"]),
        (
            "CME Group",
            Exchange,
            &["CME", "CME Group", "Chicago Mercantile Exchange"],
        ),
        ("Uniswap", Exchange, &["Uniswap"]),
        ("Nasdaq", Exchange, &["Nasdaq"]),
        ("NYSE", Exchange, &["NYSE", "New York Stock Exchange"]),
        ("Cboe", Exchange, &["Cboe", "CBOE"]),
        // Regulators, central banks, enforcement.
        (
            "SEC",
            Regulator,
            &["SEC", "Securities and Exchange Commission"],
        ),
        (
            "CFTC",
            Regulator,
            &["CFTC", "Commodity Futures Trading Commission"],
        ),
        (
            "Federal Reserve",
            Regulator,
            &["Fed", "Federal Reserve", "FOMC"],
        ),
        ("ECB", Regulator, &["ECB", "European Central Bank"]),
        ("Bank of England", Regulator, &["Bank of England", "BoE"]),
        ("Bank of Japan", Regulator, &["Bank of Japan", "BoJ"]),
        (
            "PBoC",
            Regulator,
            &["PBoC", "PBOC", "People's Bank of China"],
        ),
        ("FCA", Regulator, &["FCA", "Financial Conduct Authority"]),
        ("ESMA", Regulator, &["ESMA"]),
        ("BaFin", Regulator, &["BaFin"]),
        ("MAS", Regulator, &["Monetary Authority of Singapore"]),
        ("FINMA", Regulator, &["FINMA"]),
        (
            "SFC",
            Regulator,
            &["SFC", "Securities and Futures Commission"],
        ),
        ("HKMA", Regulator, &["HKMA", "Hong Kong Monetary Authority"]),
        ("FinCEN", Regulator, &["FinCEN"]),
        (
            "OCC",
            Regulator,
            &["OCC", "Office of the Comptroller of the Currency"],
        ),
        ("FDIC", Regulator, &["FDIC"]),
        (
            "NYDFS",
            Regulator,
            &["NYDFS", "New York Department of Financial Services"],
        ),
        (
            "DOJ",
            Regulator,
            &["DOJ", "Department of Justice", "Justice Department"],
        ),
        (
            "U.S. Treasury",
            Regulator,
            &["Treasury Department", "U.S. Treasury", "US Treasury"],
        ),
        ("OFAC", Regulator, &["OFAC"]),
        ("IRS", Regulator, &["IRS", "Internal Revenue Service"]),
        // Asset managers, banks, companies.
        ("BlackRock", Organization, &["BlackRock"]),
        (
            "Fidelity",
            Organization,
            &["Fidelity", "Fidelity Investments"],
        ),
        ("Grayscale", Organization, &["Grayscale"]),
        ("VanEck", Organization, &["VanEck"]),
        (
            "ARK Invest",
            Organization,
            &["ARK Invest", "Ark Invest", "ARK"],
        ),
        ("Franklin Templeton", Organization, &["Franklin Templeton"]),
        ("Invesco", Organization, &["Invesco"]),
        ("WisdomTree", Organization, &["WisdomTree"]),
        ("Bitwise", Organization, &["Bitwise"]),
        ("21Shares", Organization, &["21Shares", "21shares"]),
        ("Galaxy Digital", Organization, &["Galaxy Digital"]),
        ("MicroStrategy", Organization, &["MicroStrategy"]),
        ("Tesla", Organization, &["Tesla"]),
        ("PayPal", Organization, &["PayPal"]),
        ("Visa", Organization, &["Visa"]),
        ("Mastercard", Organization, &["Mastercard"]),
        ("JPMorgan", Organization, &["JPMorgan", "JPMorgan Chase"]),
        ("Goldman Sachs", Organization, &["Goldman Sachs", "Goldman"]),
        ("Morgan Stanley", Organization, &["Morgan Stanley"]),
        ("Citigroup", Organization, &["Citigroup", "Citi"]),
        ("Bank of America", Organization, &["Bank of America"]),
        ("BNY Mellon", Organization, &["BNY Mellon", "BNY"]),
        ("State Street", Organization, &["State Street"]),
        ("Standard Chartered", Organization, &["Standard Chartered"]),
        ("Deutsche Bank", Organization, &["Deutsche Bank"]),
        ("HSBC", Organization, &["HSBC"]),
        ("UBS", Organization, &["UBS"]),
        ("Circle", Organization, &["Circle"]),
        ("Robinhood", Organization, &["Robinhood"]),
        (
            "Marathon Digital",
            Organization,
            &["Marathon Digital", "MARA"],
        ),
        (
            "Riot Platforms",
            Organization,
            &["Riot Platforms", "Riot Blockchain"],
        ),
        ("Chainalysis", Organization, &["Chainalysis"]),
        ("Elliptic", Organization, &["Elliptic"]),
        ("Celsius", Organization, &["Celsius Network", "Celsius"]),
        ("Terraform Labs", Organization, &["Terraform Labs"]),
        (
            "Three Arrows Capital",
            Organization,
            &["Three Arrows Capital", "3AC"],
        ),
        ("Silvergate", Organization, &["Silvergate"]),
        (
            "Ethereum Foundation",
            Organization,
            &["Ethereum Foundation"],
        ),
        ("IMF", Organization, &["IMF", "International Monetary Fund"]),
        // Crypto assets without a pair in the alias table (symbol stays null).
        ("Tether", Cryptocurrency, &["Tether", "USDT"]),
        ("USD Coin", Cryptocurrency, &["USD Coin", "USDC"]),
        ("Dai", Cryptocurrency, &["DAI"]),
        ("TerraUSD", Cryptocurrency, &["TerraUSD", "UST"]),
        ("Bitcoin Cash", Cryptocurrency, &["Bitcoin Cash", "BCH"]),
        (
            "Ethereum Classic",
            Cryptocurrency,
            &["Ethereum Classic", "ETC"],
        ),
        ("Stellar", Cryptocurrency, &["Stellar", "XLM"]),
        ("Monero", Cryptocurrency, &["Monero", "XMR"]),
        ("Toncoin", Cryptocurrency, &["Toncoin"]),
        ("Arbitrum", Cryptocurrency, &["Arbitrum"]),
        ("Cosmos", Cryptocurrency, &["Cosmos"]),
        ("Hedera", Cryptocurrency, &["Hedera", "HBAR"]),
        ("Pepe", Cryptocurrency, &["PEPE"]),
        // People.
        ("Gary Gensler", Person, &["Gary Gensler", "Gensler"]),
        ("Paul Atkins", Person, &["Paul Atkins"]),
        ("Jerome Powell", Person, &["Jerome Powell", "Powell"]),
        (
            "Christine Lagarde",
            Person,
            &["Christine Lagarde", "Lagarde"],
        ),
        ("Janet Yellen", Person, &["Janet Yellen", "Yellen"]),
        ("Changpeng Zhao", Person, &["Changpeng Zhao", "CZ"]),
        ("Richard Teng", Person, &["Richard Teng"]),
        ("Brian Armstrong", Person, &["Brian Armstrong"]),
        (
            "Sam Bankman-Fried",
            Person,
            &["Sam Bankman-Fried", "Bankman-Fried"],
        ),
        ("Vitalik Buterin", Person, &["Vitalik Buterin", "Buterin"]),
        ("Michael Saylor", Person, &["Michael Saylor", "Saylor"]),
        ("Larry Fink", Person, &["Larry Fink"]),
        ("Cathie Wood", Person, &["Cathie Wood"]),
        ("Satoshi Nakamoto", Person, &["Satoshi Nakamoto"]),
        ("Elon Musk", Person, &["Elon Musk", "Musk"]),
        ("Do Kwon", Person, &["Do Kwon"]),
        ("Jamie Dimon", Person, &["Jamie Dimon", "Dimon"]),
        ("Donald Trump", Person, &["Donald Trump", "Trump"]),
        // Places: listed so the heuristic does not call "Hong Kong" an organisation.
        ("United States", Location, &["United States", "U.S.", "USA"]),
        ("European Union", Location, &["European Union", "EU"]),
        (
            "United Kingdom",
            Location,
            &["United Kingdom", "UK", "U.K.", "Britain"],
        ),
        ("Hong Kong", Location, &["Hong Kong"]),
        ("New York", Location, &["New York"]),
        ("El Salvador", Location, &["El Salvador"]),
        ("South Korea", Location, &["South Korea"]),
        ("China", Location, &["China"]),
        ("Japan", Location, &["Japan"]),
        ("Singapore", Location, &["Singapore"]),
        ("Wall Street", Location, &["Wall Street"]),
        ("Silicon Valley", Location, &["Silicon Valley"]),
    ]
};

/// Last words that make a capitalised span an organisation ("Acme Capital", "Foo Labs").
const ORG_SUFFIXES: &[&str] = &[
    "inc",
    "corp",
    "corporation",
    "ltd",
    "llc",
    "plc",
    "ag",
    "sa",
    "group",
    "holdings",
    "capital",
    "partners",
    "labs",
    "bank",
    "foundation",
    "fund",
    "trust",
    "exchange",
    "association",
    "institute",
    "university",
    "management",
    "investments",
    "digital",
    "technologies",
    "ventures",
    "securities",
    "markets",
    "network",
    "protocol",
    "finance",
    "asset",
    "assets",
    "company",
    "co",
    "dao",
    "research",
    "advisors",
    "commission",
    "agency",
    "ministry",
    "council",
    "authority",
    "department",
    "platforms",
    "mining",
    "pay",
];

/// Words before a span that make it a person ("CEO Jane Doe", "analyst John Roe").
const PERSON_TITLES: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "dr",
    "ceo",
    "cfo",
    "cto",
    "coo",
    "founder",
    "cofounder",
    "co-founder",
    "chairman",
    "chairwoman",
    "chair",
    "president",
    "senator",
    "sen",
    "rep",
    "governor",
    "minister",
    "secretary",
    "commissioner",
    "analyst",
    "economist",
    "strategist",
    "trader",
    "judge",
    "director",
    "head",
    "chief",
    "investor",
    "partner",
    "professor",
    "executive",
];

/// Verbs after a span that suggest a person is speaking ("Jane Doe said").
const SPEECH_VERBS: &[&str] = &[
    "said",
    "says",
    "told",
    "wrote",
    "added",
    "noted",
    "argued",
    "warned",
    "explained",
    "tweeted",
    "posted",
    "stated",
];

/// Common given names: a span starting with one is a person ("Maria Lopez").
const FIRST_NAMES: &[&str] = &[
    "james",
    "john",
    "robert",
    "michael",
    "william",
    "david",
    "richard",
    "joseph",
    "thomas",
    "charles",
    "daniel",
    "matthew",
    "anthony",
    "mark",
    "paul",
    "steven",
    "andrew",
    "kevin",
    "brian",
    "george",
    "edward",
    "ronald",
    "timothy",
    "jason",
    "jeffrey",
    "ryan",
    "jacob",
    "gary",
    "nicholas",
    "eric",
    "jonathan",
    "stephen",
    "larry",
    "justin",
    "scott",
    "brandon",
    "benjamin",
    "samuel",
    "frank",
    "gregory",
    "raymond",
    "alexander",
    "patrick",
    "jack",
    "dennis",
    "jerry",
    "tyler",
    "aaron",
    "jose",
    "adam",
    "henry",
    "nathan",
    "peter",
    "zach",
    "kyle",
    "noah",
    "alan",
    "mary",
    "patricia",
    "jennifer",
    "linda",
    "elizabeth",
    "barbara",
    "susan",
    "jessica",
    "sarah",
    "karen",
    "nancy",
    "lisa",
    "betty",
    "margaret",
    "sandra",
    "ashley",
    "kimberly",
    "emily",
    "donna",
    "michelle",
    "carol",
    "amanda",
    "melissa",
    "deborah",
    "stephanie",
    "rebecca",
    "laura",
    "sharon",
    "cynthia",
    "kathleen",
    "amy",
    "anna",
    "maria",
    "emma",
    "olivia",
    "sophia",
    "julia",
    "hannah",
    "rachel",
    "caroline",
    "elizabeth",
    "hester",
    "hayden",
    "arthur",
    "jesse",
    "tom",
    "tim",
    "mike",
    "dan",
    "joe",
    "bill",
    "bob",
    "jim",
    "ben",
    "sam",
    "alex",
    "chris",
    "max",
    "justin",
    "changpeng",
    "vitalik",
    "charles",
    "jerome",
    "christine",
    "janet",
    "cathie",
    "elizabeth",
    "kristin",
    "caitlin",
    "cynthia",
    "lummis",
    "warren",
    "brad",
    "anatoly",
    "hayes",
];

/// Capitalised words that are never (part of) a name found by the heuristic: calendar words,
/// sentence-initial function words, and generic market nouns that headlines capitalise.
fn is_not_name(lower: &str) -> bool {
    is_stop_word(lower)
        || matches!(
            lower,
            "january"
                | "february"
                | "march"
                | "april"
                | "june"
                | "july"
                | "august"
                | "september"
                | "october"
                | "november"
                | "december"
                | "meanwhile"
                | "however"
                | "according"
                | "despite"
                | "although"
                | "crypto"
                | "cryptocurrency"
                | "market"
                | "markets"
                | "price"
                | "prices"
                | "etf"
                | "etfs"
                | "spot"
                | "token"
                | "tokens"
                | "stablecoin"
                | "news"
                | "report"
                | "update"
                | "breaking"
                | "analysis"
                | "opinion"
                | "exclusive"
                | "watch"
                | "read"
                | "click"
                | "subscribe"
                | "image"
                | "photo"
                | "source"
                | "getty"
                | "images"
                | "reuters"
                | "bloomberg"
        )
}

/// One listed surface form, split into words the way the scanner splits text.
#[derive(Debug, Clone)]
struct Entry {
    parts: Vec<String>,
    case: Case,
    entity: usize,
}

/// What an entity id stands for.
#[derive(Debug, Clone)]
struct Known {
    name: String,
    kind: EntityType,
    symbol: Option<String>,
}

/// The gazetteers compiled for matching: entries grouped by their lowercased first word.
#[derive(Debug, Clone)]
pub struct EntityTables {
    known: Vec<Known>,
    by_first: FastMap<Vec<Entry>>,
    max_parts: usize,
}

impl Default for EntityTables {
    fn default() -> Self {
        Self::new(&SymbolAliases::default_crypto())
    }
}

fn split_words(s: &str) -> Vec<String> {
    words(s).iter().map(|w| w.text.to_string()).collect()
}

/// "shiba inu" -> "Shiba Inu": alias-table names are lower case.
fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl EntityTables {
    /// Compiles the gazetteers plus every alias of `aliases` (the normalizer's table): one
    /// crypto entity per symbol, named after its first multi-letter case-insensitive alias.
    pub fn new(aliases: &SymbolAliases) -> Self {
        let mut t = Self {
            known: Vec::new(),
            by_first: FastMap::default(),
            max_parts: 1,
        };
        let mut symbol_ids: HashMap<&str, usize> = HashMap::new();
        for a in &aliases.aliases {
            let id = match symbol_ids.get(a.symbol.as_str()) {
                Some(&id) => id,
                None => {
                    let name = aliases
                        .aliases
                        .iter()
                        .find(|b| b.symbol == a.symbol && b.case == AliasCase::Insensitive)
                        .map(|b| title_case(&b.alias))
                        .unwrap_or_else(|| a.alias.clone());
                    t.known.push(Known {
                        name,
                        kind: EntityType::Cryptocurrency,
                        symbol: Some(a.symbol.clone()),
                    });
                    symbol_ids.insert(a.symbol.as_str(), t.known.len() - 1);
                    t.known.len() - 1
                }
            };
            t.add_entry(&a.alias, a.case.into(), id);
        }
        for (name, kind, forms) in GAZETTEER {
            // The alias table wins: a name it already maps stays a symbol-bearing crypto entity.
            let id = t.known.len();
            t.known.push(Known {
                name: (*name).to_string(),
                kind: *kind,
                symbol: None,
            });
            for f in *forms {
                let upper = !f.chars().any(char::is_lowercase);
                let case = if upper {
                    Case::Exact
                } else {
                    Case::Capitalised
                };
                t.add_entry(f, case, id);
            }
        }
        t
    }

    fn add_entry(&mut self, form: &str, case: Case, entity: usize) {
        let parts = split_words(form);
        let Some(first) = parts.first() else {
            return;
        };
        let key = first.to_lowercase();
        self.max_parts = self.max_parts.max(parts.len());
        let list = self.by_first.entry(key).or_default();
        // First listing wins for an identical surface form (alias table before gazetteer).
        if list.iter().any(|e| {
            e.parts.len() == parts.len()
                && e.parts
                    .iter()
                    .zip(&parts)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        }) {
            return;
        }
        list.push(Entry {
            parts,
            case,
            entity,
        });
        // Longest first, so the first match at a position is the longest.
        list.sort_by_key(|e| std::cmp::Reverse(e.parts.len()));
    }

    /// The longest entry matching at word `i`: (entity id, words used).
    fn match_at(&self, ws: &[Word<'_>], lower: &[String], i: usize) -> Option<(usize, usize)> {
        let key = lower[i].as_str();
        let list = self.by_first.get(key).or_else(|| {
            // A plural of a one-word insensitive alias ("bitcoins").
            key.strip_suffix('s').and_then(|k| self.by_first.get(k))
        })?;
        list.iter().find_map(|e| {
            let n = e.parts.len();
            if i + n > ws.len() {
                return None;
            }
            // A multi-word name does not run across punctuation.
            if ws[i + 1..i + n]
                .iter()
                .any(|w| w.boundary_before && !w.dot_joined)
            {
                return None;
            }
            let ok = e.parts.iter().enumerate().all(|(j, p)| {
                let w = &ws[i + j];
                let last = j == n - 1;
                match e.case {
                    Case::Exact => w.text == p,
                    Case::Cashtag => j > 0 || (w.dollar && w.text == p),
                    Case::Insensitive => {
                        let l = &lower[i + j];
                        l.eq_ignore_ascii_case(p)
                            || (last
                                && l.strip_suffix('s')
                                    .is_some_and(|s| s.eq_ignore_ascii_case(p)))
                    }
                    Case::Capitalised => {
                        (j > 0 || w.text.chars().next().is_some_and(char::is_uppercase))
                            && (w.text.eq_ignore_ascii_case(p) || w.text == p)
                    }
                }
            });
            let ok = ok
                && (e.case != Case::Cashtag
                    || ws[i + 1..i + n]
                        .iter()
                        .zip(&e.parts[1..])
                        .all(|(w, p)| w.text == p));
            ok.then_some((e.entity, n))
        })
    }
}

/// A mention found in the text.
#[derive(Debug, Clone)]
struct Mention {
    key: MentionKey,
    in_title: bool,
    /// Position in 0..1 through the whole text (title first).
    position: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum MentionKey {
    Known(usize),
    Found(EntityType, String),
}

/// Most entities reported per article (highest relevance first).
pub const MAX_ENTITIES: usize = 25;

/// Relevance in 0..1 = 0.35·(in title) + 0.35·(count / most frequent entity's count) +
/// 0.20·(1 − position of first mention through the text) + 0.10·(symbol in the caller's hint).
/// Title and frequency dominate because they are how an article signals what it is about.
pub fn relevance(in_title: bool, count: u32, max_count: u32, first_pos: f64, hinted: bool) -> f64 {
    let freq = if max_count > 0 {
        f64::from(count) / f64::from(max_count)
    } else {
        0.0
    };
    let r = 0.35 * f64::from(u8::from(in_title))
        + 0.35 * freq
        + 0.20 * (1.0 - first_pos.clamp(0.0, 1.0))
        + 0.10 * f64::from(u8::from(hinted));
    round4(r.clamp(0.0, 1.0))
}

impl EntityTables {
    /// Entities of an article, most relevant first (ties by name, then type, for a total order).
    pub fn extract(&self, title: &str, body: &str, symbols_hint: &[String]) -> Vec<Entity> {
        let mut mentions: Vec<Mention> = Vec::new();
        let total_len = (title.len() + body.len()).max(1) as f64;
        for (text, offset, in_title) in [(title, 0usize, true), (body, title.len(), false)] {
            let ws = words(text);
            let lower: Vec<String> = ws.iter().map(|w| w.text.to_lowercase()).collect();
            let mut i = 0;
            while i < ws.len() {
                let position = (offset + ws[i].start) as f64 / total_len;
                if let Some((id, n)) = self.match_at(&ws, &lower, i) {
                    mentions.push(Mention {
                        key: MentionKey::Known(id),
                        in_title,
                        position,
                    });
                    i += n;
                    continue;
                }
                if let Some((kind, name, n)) = self.heuristic_at(&ws, &lower, i) {
                    mentions.push(Mention {
                        key: MentionKey::Found(kind, name),
                        in_title,
                        position,
                    });
                    i += n;
                    continue;
                }
                i += 1;
            }
        }
        self.collect(mentions, symbols_hint)
    }

    fn collect(&self, mentions: Vec<Mention>, symbols_hint: &[String]) -> Vec<Entity> {
        // key -> (count, in_title, first position)
        let mut agg: HashMap<MentionKey, (u32, bool, f64)> = HashMap::new();
        for m in mentions {
            let e = agg.entry(m.key).or_insert((0, false, f64::MAX));
            e.0 += 1;
            e.1 |= m.in_title;
            e.2 = e.2.min(m.position);
        }
        let max_count = agg.values().map(|v| v.0).max().unwrap_or(0);
        let mut out: Vec<Entity> = agg
            .into_iter()
            .map(|(key, (count, in_title, first))| {
                let (text, kind, symbol) = match key {
                    MentionKey::Known(id) => {
                        let k = &self.known[id];
                        (k.name.clone(), k.kind, k.symbol.clone())
                    }
                    MentionKey::Found(kind, name) => (name, kind, None),
                };
                let hinted = symbol.as_ref().is_some_and(|s| symbols_hint.contains(s));
                Entity {
                    relevance: relevance(in_title, count, max_count, first, hinted),
                    text,
                    kind,
                    symbol,
                    count,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.relevance
                .total_cmp(&a.relevance)
                .then_with(|| b.count.cmp(&a.count))
                .then_with(|| a.text.cmp(&b.text))
                .then_with(|| a.kind.cmp(&b.kind))
        });
        out.truncate(MAX_ENTITIES);
        out
    }

    /// A capitalised span of 2–4 words not in the gazetteers: a person if it starts with a
    /// common given name, follows a title ("CEO") or precedes a speech verb ("said"); an
    /// organisation if it ends with an organisation word ("Capital", "Labs"). Anything else is
    /// left out: a wrong entity is worse than a missing one.
    fn heuristic_at(
        &self,
        ws: &[Word<'_>],
        lower: &[String],
        i: usize,
    ) -> Option<(EntityType, String, usize)> {
        let capital = |k: usize| ws[k].is_capitalised() && !is_not_name(&lower[k]);
        // A title opens no name: "Analyst Jane Doe" is the person "Jane Doe".
        if !capital(i) || PERSON_TITLES.contains(&lower[i].as_str()) {
            return None;
        }
        let mut n = 1;
        while i + n < ws.len() && n < 4 && !ws[i + n].boundary_before {
            let k = i + n;
            let connector = matches!(lower[k].as_str(), "of" | "and" | "de" | "van" | "von")
                && k + 1 < ws.len()
                && !ws[k + 1].boundary_before
                && ws[k + 1].is_capitalised();
            // A known entity inside ends the span ("Jane Doe Binance" is two things).
            if (capital(k) || connector) && self.match_at(ws, lower, k).is_none() {
                n += 1;
            } else {
                break;
            }
        }
        if n < 2 {
            return None;
        }
        let span = &ws[i..i + n];
        let name = span.iter().map(|w| w.text).collect::<Vec<_>>().join(" ");
        let last = lower[i + n - 1].as_str();
        if ORG_SUFFIXES.contains(&last) {
            return Some((EntityType::Organization, name, n));
        }
        let all_names = span
            .iter()
            .all(|w| w.is_capitalised() && w.text.chars().all(|c| c.is_alphabetic() || c == '-'));
        let titled =
            i > 0 && !ws[i].boundary_before && PERSON_TITLES.contains(&lower[i - 1].as_str());
        let speaks = i + n < ws.len() && SPEECH_VERBS.contains(&lower[i + n].as_str());
        if all_names && n <= 3 && (FIRST_NAMES.contains(&lower[i].as_str()) || titled || speaks) {
            return Some((EntityType::Person, name, n));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(es: &'a [Entity], text: &str) -> Option<&'a Entity> {
        es.iter().find(|e| e.text == text)
    }

    #[test]
    fn aliases_merge_and_map_to_symbols() {
        let t = EntityTables::default();
        let es = t.extract(
            "Bitcoin tops $100k as BTC ETF inflows grow",
            "Bitcoins were bought. The SEC and Binance commented; $SOL rose while sol-gel did not.",
            &[],
        );
        let btc = find(&es, "Bitcoin").unwrap();
        assert_eq!(btc.symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(btc.count, 3);
        assert_eq!(btc.kind, EntityType::Cryptocurrency);
        assert_eq!(find(&es, "SEC").unwrap().kind, EntityType::Regulator);
        assert_eq!(find(&es, "Binance").unwrap().kind, EntityType::Exchange);
        assert_eq!(find(&es, "Solana").unwrap().count, 1);
        assert_eq!(es[0].text, "Bitcoin", "{es:?}");
    }

    #[test]
    fn longest_match_and_case_rules() {
        let t = EntityTables::default();
        let es = t.extract(
            "",
            "Binance Coin and Bitcoin Cash moved. The fed up trader sold.",
            &[],
        );
        assert_eq!(
            find(&es, "Binance Coin").unwrap().symbol.as_deref(),
            Some("BNBUSDT")
        );
        assert!(find(&es, "Binance").is_none());
        assert!(find(&es, "Bitcoin").is_none());
        assert_eq!(find(&es, "Bitcoin Cash").unwrap().symbol, None);
        assert!(find(&es, "Federal Reserve").is_none(), "{es:?}");
    }

    #[test]
    fn heuristic_people_and_organisations() {
        let t = EntityTables::default();
        let es = t.extract(
            "",
            "Analyst Jane Whitfield said Acme Capital bought more. Maria Lopez agreed. \
             The Monday Meeting happened.",
            &[],
        );
        assert_eq!(
            find(&es, "Jane Whitfield").unwrap().kind,
            EntityType::Person,
            "{es:?}"
        );
        assert_eq!(
            find(&es, "Acme Capital").unwrap().kind,
            EntityType::Organization
        );
        assert_eq!(find(&es, "Maria Lopez").unwrap().kind, EntityType::Person);
        assert!(find(&es, "Monday Meeting").is_none());
    }

    #[test]
    fn hint_raises_relevance() {
        let t = EntityTables::default();
        let a = t.extract("", "Ether and bitcoin traded flat.", &[]);
        let b = t.extract(
            "",
            "Ether and bitcoin traded flat.",
            &["BTCUSDT".to_string()],
        );
        let ra = find(&a, "Bitcoin").unwrap().relevance;
        let rb = find(&b, "Bitcoin").unwrap().relevance;
        assert!((rb - ra - 0.1).abs() < 1e-9);
    }
}
