//! The configured news sources (`config/sources.toml`): loaded and validated once at start.

use crate::domain::NewsSource;
use crate::domain::news::SourceKind;
use crate::news::crawl::egress::{EgressPolicy, is_public};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("sources file {path}: {message}")]
    Read { path: String, message: String },
    #[error("sources file {path}: source {name:?}: {problem}")]
    Invalid {
        path: String,
        name: String,
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    #[serde(default)]
    sources: Vec<NewsSource>,
}

/// Reads and validates the sources file. A missing file is no sources (the news pipeline then
/// does not start); a malformed one is an error naming the file and the problem.
pub(crate) fn load_sources(path: &Path) -> Result<Vec<NewsSource>, SourcesError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(SourcesError::Read {
                path: shown,
                message: e.to_string(),
            });
        }
    };
    let file: SourcesFile = toml::from_str(&text).map_err(|e| SourcesError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let mut seen = std::collections::HashSet::new();
    for s in &file.sources {
        let bad = |problem: &str| SourcesError::Invalid {
            path: shown.clone(),
            name: s.name.clone(),
            problem: problem.to_string(),
        };
        if s.name.trim().is_empty() {
            return Err(bad("name is empty"));
        }
        if !seen.insert(s.name.clone()) {
            return Err(bad("name is used twice (sources are upserted by name)"));
        }
        for u in std::iter::once(&s.base_url).chain(s.feed_url.iter()) {
            match url::Url::parse(u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => return Err(bad(&format!("{u:?} is not an http(s) URL"))),
            }
        }
        let egress = EgressPolicy::for_source(s).map_err(|problem| bad(&problem))?;
        if !egress.allows_private_network() {
            for u in std::iter::once(&s.base_url).chain(s.feed_url.iter()) {
                if let Some(problem) = private_target(u) {
                    return Err(bad(&format!(
                        "{u:?} {problem}; the crawler refuses such addresses unless the source \
                         sets allow_private_network = true (only for a site you run)"
                    )));
                }
            }
        }
        if s.rate_limit.requests_per_minute == 0 {
            return Err(bad("rate_limit.requests_per_minute must be at least 1"));
        }
        if s.crawl_interval_minutes == 0 {
            return Err(bad("crawl_interval_minutes must be at least 1"));
        }
        if !(0.0..=1.0).contains(&s.metadata.reliability_score) {
            return Err(bad("metadata.reliability_score must be within 0..1"));
        }
        match s.kind {
            SourceKind::Rss if s.feed_url.is_none() => {
                return Err(bad("an RSS source needs feed_url"));
            }
            SourceKind::Html if s.selectors.article_list.is_none() => {
                return Err(bad("an HTML source needs selectors.article_list"));
            }
            SourceKind::Api if s.is_active => {
                return Err(bad(
                    "API sources are not implemented yet; set is_active = false",
                ));
            }
            _ => {}
        }
    }
    Ok(file.sources)
}

/// Why a configured URL is visibly on a non-public address (an IP literal or `localhost`), so
/// that such a source fails at start rather than on every fetch. Names that merely *resolve*
/// to private addresses are caught at fetch time.
fn private_target(u: &str) -> Option<&'static str> {
    let parsed = url::Url::parse(u).ok()?;
    match parsed.host()? {
        url::Host::Ipv4(ip) if !is_public(ip.into()) => Some("is on a non-public address"),
        url::Host::Ipv6(ip) if !is_public(ip.into()) => Some("is on a non-public address"),
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            (d == "localhost" || d.ends_with(".localhost")).then_some("is on localhost")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sources_file_is_valid_and_inactive() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sources.toml");
        let sources = load_sources(&path).unwrap();
        assert!(sources.len() >= 4);
        assert!(
            sources.iter().all(|s| !s.is_active),
            "shipped sources stay off until enabled"
        );
    }

    #[test]
    fn invalid_sources_name_the_problem() {
        let dir = std::env::temp_dir().join(format!("tp-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.toml");
        std::fs::write(
            &p,
            "[[sources]]\nname = \"X\"\nbase_url = \"https://x.test\"\ntype = \"RSS\"\n",
        )
        .unwrap();
        let e = load_sources(&p).unwrap_err().to_string();
        assert!(e.contains("\"X\"") && e.contains("feed_url"), "{e}");
        std::fs::write(
            &p,
            "[[sources]]\nname = \"L\"\nbase_url = \"http://127.0.0.1:8080/\"\n\
             feed_url = \"http://127.0.0.1:8080/rss\"\ntype = \"RSS\"\n",
        )
        .unwrap();
        let e = load_sources(&p).unwrap_err().to_string();
        assert!(e.contains("allow_private_network"), "{e}");
        let opted_in = std::fs::read_to_string(&p).unwrap() + "allow_private_network = true\n";
        std::fs::write(&p, opted_in).unwrap();
        assert!(load_sources(&p).unwrap()[0].allow_private_network);
        std::fs::write(
            &p,
            "[[sources]]\nname = \"H\"\nbase_url = \"https://x.test/\"\n\
             feed_url = \"https://x.test/rss\"\ntype = \"RSS\"\nallowed_hosts = [\"https://cdn.x.test\"]\n",
        )
        .unwrap();
        let e = load_sources(&p).unwrap_err().to_string();
        assert!(e.contains("allowed_hosts"), "{e}");
        assert!(load_sources(&dir.join("missing.toml")).unwrap().is_empty());
    }
}
