//! The alias table that maps mentions in text ("Bitcoin", "$SOL", "BTC") to trading symbols.
//! Shared by the normalizer (an article's `symbols`) and the entity extractor, so both agree on
//! what a mention is.

use serde::{Deserialize, Serialize};

/// How an alias must appear in text to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AliasCase {
    /// Any case, optional plural "s" ("Bitcoin", "bitcoins").
    Insensitive,
    /// Exactly as written, e.g. tickers "BTC" (so "eth" in a URL slug or a
    /// word in another language does not count).
    Exact,
    /// Only as a cashtag (`$SOL`): tickers that are also common words
    /// ("SOL", "LINK", "DOT", "ONE", "NEAR").
    Cashtag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolAlias {
    /// One or more words ("shiba inu").
    pub alias: String,
    pub symbol: String,
    pub case: AliasCase,
}

/// Configurable alias table mapping mentions to trading symbols.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolAliases {
    pub aliases: Vec<SymbolAlias>,
}

impl SymbolAliases {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, alias: &str, symbol: &str, case: AliasCase) -> &mut Self {
        self.aliases.push(SymbolAlias {
            alias: alias.trim().to_string(),
            symbol: symbol.to_string(),
            case,
        });
        self
    }

    /// A starter table for the major USDT pairs.
    pub fn default_crypto() -> Self {
        use AliasCase::*;
        let mut t = Self::new();
        for (names, tickers, cashtag_only, sym) in [
            (&["bitcoin"][..], &["BTC", "XBT"][..], &[][..], "BTCUSDT"),
            (&["ethereum", "ether"], &["ETH"], &[], "ETHUSDT"),
            (&["solana"], &[], &["SOL"], "SOLUSDT"),
            (&["ripple"], &["XRP"], &[], "XRPUSDT"),
            (&["cardano"], &["ADA"], &[], "ADAUSDT"),
            (&["dogecoin"], &["DOGE"], &[], "DOGEUSDT"),
            (&["binance coin"], &["BNB"], &[], "BNBUSDT"),
            (&["polkadot"], &[], &["DOT"], "DOTUSDT"),
            (&["chainlink"], &[], &["LINK"], "LINKUSDT"),
            (&["avalanche"], &["AVAX"], &[], "AVAXUSDT"),
            (&["litecoin"], &["LTC"], &[], "LTCUSDT"),
            (&["tron"], &["TRX"], &[], "TRXUSDT"),
            (&["shiba inu"], &["SHIB"], &[], "SHIBUSDT"),
            (&["polygon"], &["MATIC", "POL"], &[], "MATICUSDT"),
        ] {
            for n in names {
                t.add(n, sym, Insensitive);
            }
            for k in tickers {
                t.add(k, sym, Exact);
            }
            for k in cashtag_only {
                t.add(k, sym, Cashtag);
            }
        }
        t
    }

    /// Symbols mentioned in `text`, sorted and deduplicated. Matching is on
    /// whole words (letters/digits), so "ETHICS" or "bitcoinist" do not match.
    pub fn find(&self, text: &str) -> Vec<String> {
        // Words with a flag saying whether a '$' immediately precedes them.
        let mut words: Vec<(&str, bool)> = Vec::new();
        let mut start: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                if start.is_none() {
                    start = Some(i);
                }
            } else if let Some(s) = start.take() {
                words.push((&text[s..i], s > 0 && text.as_bytes()[s - 1] == b'$'));
            }
        }
        if let Some(s) = start {
            words.push((&text[s..], s > 0 && text.as_bytes()[s - 1] == b'$'));
        }
        let lower: Vec<String> = words.iter().map(|(w, _)| w.to_lowercase()).collect();
        let mut out: Vec<String> = Vec::new();
        for a in &self.aliases {
            let parts: Vec<String> = a.alias.split_whitespace().map(str::to_string).collect();
            if parts.is_empty() || out.contains(&a.symbol) {
                continue;
            }
            let n = parts.len();
            let hit = (0..words.len().saturating_sub(n - 1)).any(|i| match a.case {
                AliasCase::Insensitive => parts.iter().enumerate().all(|(j, p)| {
                    let w = &lower[i + j];
                    let p = p.to_lowercase();
                    *w == p || (j == n - 1 && w.strip_suffix('s') == Some(p.as_str()))
                }),
                AliasCase::Exact => parts.iter().enumerate().all(|(j, p)| words[i + j].0 == p),
                AliasCase::Cashtag => {
                    words[i].1 && parts.iter().enumerate().all(|(j, p)| words[i + j].0 == p)
                }
            });
            if hit {
                out.push(a.symbol.clone());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_respect_case_and_word_rules() {
        let t = SymbolAliases::default_crypto();
        assert_eq!(
            t.find("Bitcoin and ETH rallied; bitcoins are scarce"),
            vec!["BTCUSDT", "ETHUSDT"]
        );
        // Lower-case tickers, substrings and common-word tickers do not count.
        assert!(
            t.find("The eth zurich study on ethics; a link to the sol-gel dot matrix")
                .is_empty()
        );
        assert!(t.find("BitcoinTalk forum").is_empty());
        assert_eq!(t.find("Traders piled into $SOL and LINK"), vec!["SOLUSDT"]);
        assert_eq!(t.find("Shiba Inu surged"), vec!["SHIBUSDT"]);
        assert!(t.find("a shiba dog").is_empty());
        let mut custom = SymbolAliases::new();
        custom.add("XAU", "XAUUSDT", AliasCase::Exact);
        assert_eq!(custom.find("XAU/USD"), vec!["XAUUSDT"]);
    }
}
