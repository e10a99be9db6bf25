//! Polite HTTP fetching for the crawler: one [`PoliteFetcher`] per news source.
//!
//! Politeness is enforced here, in one place, so no caller can forget it:
//! - requests to the source start at least `max(delay_ms, 60000 / requests_per_minute)` apart
//!   (and at least the robots.txt `Crawl-delay`, when the site sets a longer one), measured with
//!   tokio's clock, robots.txt and feeds included; the next start is also at least that long
//!   after the previous response, so the site sees the spacing too (see `rebook`);
//! - robots.txt is fetched once per origin and cached. A 4xx robots.txt (404 included) means
//!   "allow everything"; a 5xx, a 429 or an unreachable robots.txt means "disallow everything for
//!   now", as Google does: the site may be overloaded, and crawling it blind could be exactly what
//!   it tried to forbid. Such an error verdict is re-checked after [`ROBOTS_ERROR_TTL`];
//! - conditional GET (ETag / Last-Modified) so an unchanged feed costs the site a 304;
//! - a descriptive User-Agent, a total timeout, a redirect cap and a body size cap enforced while
//!   streaming (an oversized page is an error, never a truncated page);
//! - the source's egress policy ([`EgressPolicy`]) on every URL, every redirect hop and every
//!   resolved address, and no proxy from the environment (a proxy would resolve the names
//!   itself, out of the policy's sight).

use super::decode::{NotText, decode_body};
use super::egress::{EgressPolicy, EgressRefusal, refusal_in};
use crate::config::NewsConfig;
use crate::domain::news::RateLimit;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

/// A robots.txt that could be read is trusted this long (Google caches up to 24 hours).
pub(crate) const ROBOTS_TTL: Duration = Duration::from_secs(24 * 3600);
/// A robots.txt that failed (5xx, unreachable) is asked for again after this long.
pub(crate) const ROBOTS_ERROR_TTL: Duration = Duration::from_secs(10 * 60);

/// A successfully fetched page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPage {
    /// URL after redirects.
    pub final_url: String,
    pub status: u16,
    /// Lower-case header names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// Decoded text (see [`decode_body`]: BOM, Content-Type charset, `<meta>`, else UTF-8).
    pub body: String,
}

/// What a conditional fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Page(FetchedPage),
    /// 304: the validators we sent still match; nothing changed since the last fetch.
    NotModified {
        final_url: String,
    },
}

/// Why a fetch failed. [`FetchError::kind`] is the metrics label.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("invalid URL {url}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("robots.txt disallows {url}")]
    RobotsDisallowed { url: String },
    #[error("timed out fetching {url}")]
    Timeout { url: String },
    #[error("cannot connect to fetch {url}: {message}")]
    Connect { url: String, message: String },
    #[error("more than {max} redirects fetching {url}")]
    TooManyRedirects { url: String, max: usize },
    #[error("HTTP {status} fetching {url}")]
    Status { url: String, status: u16 },
    #[error("body of {url} exceeds {limit} bytes (not stored truncated)")]
    TooLarge { url: String, limit: u64 },
    #[error("reading the body of {url} failed: {message}")]
    Body { url: String, message: String },
    #[error("{url} is not a text page: {reason}")]
    NotText { url: String, reason: NotText },
    #[error("request for {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("{url} refused: {refusal}")]
    Blocked { url: String, refusal: EgressRefusal },
}

/// Every [`FetchError::kind`]: the values of `tradepipe_crawl_errors_total{kind}`.
pub const FETCH_ERROR_KINDS: &[&str] = &[
    "invalid_url",
    "robots_disallowed",
    "timeout",
    "connect",
    "too_many_redirects",
    "status",
    "too_large",
    "body",
    "not_text",
    "request",
    "blocked_host",
    "blocked_address",
];

impl FetchError {
    /// Bounded label for `tradepipe_crawl_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl { .. } => "invalid_url",
            FetchError::RobotsDisallowed { .. } => "robots_disallowed",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. } => "connect",
            FetchError::TooManyRedirects { .. } => "too_many_redirects",
            FetchError::Status { .. } => "status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Body { .. } => "body",
            FetchError::NotText { .. } => "not_text",
            FetchError::Request { .. } => "request",
            FetchError::Blocked { refusal, .. } => refusal.kind(),
        }
    }

    /// Whether trying again soon may help. A page that is too large, forbidden by robots.txt,
    /// or answered with a definite 4xx will answer the same way within the round.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Timeout { .. }
            | FetchError::Connect { .. }
            | FetchError::Body { .. }
            | FetchError::Request { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            FetchError::InvalidUrl { .. }
            | FetchError::RobotsDisallowed { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::TooLarge { .. }
            | FetchError::NotText { .. }
            | FetchError::Blocked { .. } => false,
        }
    }

    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The fetch settings of `[news]` that the fetcher uses.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub user_agent: String,
    pub request_timeout: Duration,
    pub max_redirects: usize,
    pub max_body_bytes: u64,
    pub respect_robots_txt: bool,
    /// A `Retry-After` on a 429/503 holds the source's next request back this long at most.
    pub max_retry_after: Duration,
}

impl From<&NewsConfig> for FetchSettings {
    fn from(c: &NewsConfig) -> Self {
        FetchSettings {
            user_agent: c.user_agent.clone(),
            request_timeout: Duration::from_millis(c.request_timeout_ms),
            max_redirects: c.max_redirects,
            max_body_bytes: c.max_body_bytes,
            respect_robots_txt: c.respect_robots_txt,
            max_retry_after: c.backoff().max_retry_after,
        }
    }
}

/// The minimum spacing between request starts for a source's rate limit:
/// `max(delay_ms, 60000 / requests_per_minute)` (a zero rate means "no per-minute bound").
pub(crate) fn min_interval(rate: &RateLimit) -> Duration {
    let per_minute = if rate.requests_per_minute == 0 {
        0
    } else {
        60_000 / u64::from(rate.requests_per_minute)
    };
    Duration::from_millis(rate.delay_ms.max(per_minute))
}

/// The robots.txt verdict for one origin.
enum RobotsRule {
    AllowAll,
    DisallowAll,
    Rules(Box<texting_robots::Robot>),
}

struct CachedRobots {
    rule: RobotsRule,
    expires: Instant,
}

#[derive(Debug, Clone, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Fetches one source's URLs politely (see the module docs). Cheap to share behind an `Arc`:
/// every method takes `&self`.
pub struct PoliteFetcher {
    source: String,
    client: reqwest::Client,
    egress: EgressPolicy,
    settings: FetchSettings,
    /// The robots.txt group to match: the product token of the User-Agent.
    robots_agent: String,
    interval: Duration,
    /// When the next request may start. Held across the wait, so concurrent callers queue up.
    next_start: Mutex<Option<Instant>>,
    robots: Mutex<HashMap<String, CachedRobots>>,
    validators: Mutex<HashMap<String, Validators>>,
}

impl PoliteFetcher {
    pub fn new(
        source: &str,
        rate: &RateLimit,
        egress: EgressPolicy,
        settings: FetchSettings,
    ) -> Result<PoliteFetcher, FetchError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .redirect(redirect_policy(egress.clone(), settings.max_redirects))
            .no_proxy()
            .gzip(true)
            .brotli(true);
        if let Some(resolver) = egress.resolver() {
            builder = builder.dns_resolver(resolver);
        }
        let client = builder.build().map_err(|e| FetchError::Request {
            url: String::new(),
            message: format!("building the HTTP client for source {source}: {e}"),
        })?;
        let robots_agent = settings
            .user_agent
            .split(['/', ' '])
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("tradepipe")
            .to_string();
        Ok(PoliteFetcher {
            source: source.to_string(),
            client,
            egress,
            robots_agent,
            interval: min_interval(rate),
            settings,
            next_start: Mutex::new(None),
            robots: Mutex::new(HashMap::new()),
            validators: Mutex::new(HashMap::new()),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The configured spacing between request starts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Fetches `url` unconditionally (article pages: we only fetch those we do not have).
    pub async fn fetch(&self, url: &str) -> Result<FetchedPage, FetchError> {
        match self.get(url, None).await? {
            Fetched::Page(p) => Ok(p),
            // Unreachable in practice: without validators a server has nothing to answer 304 to.
            Fetched::NotModified { final_url } => Err(FetchError::Status {
                url: final_url,
                status: 304,
            }),
        }
    }

    /// Fetches `url` with the ETag / Last-Modified remembered for it, if any. The new validators
    /// are NOT remembered automatically: call [`PoliteFetcher::remember`] once the page has been
    /// fully used, so that a round interrupted half-way does not turn the next fetch into a 304
    /// that hides entries never processed.
    pub async fn fetch_if_modified(&self, url: &str) -> Result<Fetched, FetchError> {
        let v = self.validators.lock().await.get(url).cloned();
        self.get(url, v).await
    }

    /// Remembers `page`'s validators for the next [`PoliteFetcher::fetch_if_modified`] of `url`.
    pub async fn remember(&self, url: &str, page: &FetchedPage) {
        let v = Validators {
            etag: page.headers.get("etag").cloned(),
            last_modified: page.headers.get("last-modified").cloned(),
        };
        let mut map = self.validators.lock().await;
        if v.etag.is_none() && v.last_modified.is_none() {
            map.remove(url);
        } else {
            map.insert(url.to_string(), v);
        }
    }

    async fn get(&self, url: &str, validators: Option<Validators>) -> Result<Fetched, FetchError> {
        let result = self.get_inner(url, validators).await;
        if let Err(e) = &result {
            metrics::counter!("tradepipe_crawl_errors_total", "source" => self.source.clone(), "kind" => e.kind())
                .increment(1);
            if let FetchError::Blocked { refusal, .. } = e {
                // Worth a warning every time: a site pointing the crawler elsewhere is either
                // misconfigured (add the host to allowed_hosts) or probing.
                tracing::warn!(source = %self.source, url, reason = refusal.kind(), error = %refusal, "fetch refused by the egress policy");
            }
            tracing::debug!(source = %self.source, url, error = %e, kind = e.kind(), "fetch failed");
        }
        result
    }

    async fn get_inner(
        &self,
        url: &str,
        validators: Option<Validators>,
    ) -> Result<Fetched, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::InvalidUrl {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::InvalidUrl {
                url: url.to_string(),
                message: format!("unsupported scheme {}", parsed.scheme()),
            });
        }
        self.egress
            .check_url(&parsed)
            .map_err(|refusal| FetchError::Blocked {
                url: url.to_string(),
                refusal,
            })?;
        let mut crawl_delay = Duration::ZERO;
        if self.settings.respect_robots_txt {
            let (allowed, delay) = self.robots_verdict(&parsed).await;
            if !allowed {
                return Err(FetchError::RobotsDisallowed {
                    url: url.to_string(),
                });
            }
            crawl_delay = delay;
        }
        let mut req = self.client.get(parsed.clone());
        if let Some(v) = &validators {
            if let Some(etag) = &v.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
        }
        self.pace(crawl_delay).await;
        let started = Instant::now();
        let result = self.send(url, req, validators.is_some()).await;
        self.rebook(crawl_delay).await;
        metrics::histogram!("tradepipe_crawl_request_seconds", "source" => self.source.clone())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Sends one (already paced) request and reads its body under the size cap.
    async fn send(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
        conditional: bool,
    ) -> Result<Fetched, FetchError> {
        metrics::counter!("tradepipe_crawl_requests_total", "source" => self.source.clone())
            .increment(1);
        let resp = req.send().await.map_err(|e| self.classify(url, e))?;
        let status = resp.status();
        let final_url = resp.url().to_string();
        if conditional && status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified { final_url });
        }
        if !status.is_success() {
            if (status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE)
                && let Some(asked) = crate::backoff::retry_after(resp.headers())
            {
                self.hold_off(asked.min(self.settings.max_retry_after))
                    .await;
            }
            return Err(FetchError::Status {
                url: final_url,
                status: status.as_u16(),
            });
        }
        let headers = header_map(resp.headers());
        let bytes = self.read_capped(url, resp).await?;
        let body = decode_body(&bytes, headers.get("content-type").map(String::as_str)).map_err(
            |reason| FetchError::NotText {
                url: final_url.clone(),
                reason,
            },
        )?;
        Ok(Fetched::Page(FetchedPage {
            final_url,
            status: status.as_u16(),
            headers,
            body,
        }))
    }

    /// Reads the (decompressed) body, refusing early on a declared Content-Length over the cap
    /// and otherwise counting chunks: a lying or absent length cannot make us buffer too much.
    async fn read_capped(
        &self,
        url: &str,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>, FetchError> {
        let limit = self.settings.max_body_bytes;
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    metrics::counter!("tradepipe_crawl_bytes_total", "source" => self.source.clone())
                        .increment(chunk.len() as u64);
                    if buf.len() as u64 + chunk.len() as u64 > limit {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf),
                Err(e) => return Err(self.classify(url, e)),
            }
        }
    }

    fn classify(&self, url: &str, e: reqwest::Error) -> FetchError {
        let url = url.to_string();
        if let Some(refusal) = refusal_in(&e) {
            // A redirect hop or a resolved address the policy refused: the URL named is the
            // hop's when the client knows it.
            let url = e.url().map(|u| u.to_string()).unwrap_or(url);
            FetchError::Blocked { url, refusal }
        } else if e.is_timeout() {
            FetchError::Timeout { url }
        } else if e.is_redirect() {
            FetchError::TooManyRedirects {
                url,
                max: self.settings.max_redirects,
            }
        } else if e.is_connect() {
            FetchError::Connect {
                url,
                message: error_chain(&e),
            }
        } else if e.is_body() || e.is_decode() {
            FetchError::Body {
                url,
                message: error_chain(&e),
            }
        } else {
            FetchError::Request {
                url,
                message: error_chain(&e),
            }
        }
    }

    /// Waits until the next request may start, then books the slot after it.
    async fn pace(&self, crawl_delay: Duration) {
        let mut next = self.next_start.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at).await;
        }
        *next = Some(Instant::now() + self.interval.max(crawl_delay));
    }

    /// The site asked us (`Retry-After`) to stay away this long: no request to this source,
    /// retry or not, starts earlier.
    async fn hold_off(&self, wait: Duration) {
        tracing::info!(source = %self.source, wait_ms = wait.as_millis() as u64, "site asked to retry later (Retry-After); holding requests back");
        self.not_before(Instant::now() + wait).await;
    }

    /// Pushes the next slot to a full interval after this response. Spacing starts alone lets
    /// the *site* see requests closer than the interval whenever one request took longer to
    /// leave than the next (connection setup, a busy client): measured there, the gap was 135 ms
    /// for a 150 ms interval. Counting from the response keeps both views polite.
    async fn rebook(&self, crawl_delay: Duration) {
        self.not_before(Instant::now() + self.interval.max(crawl_delay))
            .await;
    }

    /// Moves the next request start to `at` unless it is already later.
    async fn not_before(&self, at: Instant) {
        let mut next = self.next_start.lock().await;
        if next.is_none_or(|n| n < at) {
            *next = Some(at);
        }
    }

    /// (allowed, robots Crawl-delay) for `url`, fetching the origin's robots.txt when not cached.
    async fn robots_verdict(&self, url: &Url) -> (bool, Duration) {
        let origin = url.origin().ascii_serialization();
        // Held while fetching robots.txt so that it is fetched once even under concurrent calls.
        let mut cache = self.robots.lock().await;
        let fresh = cache
            .get(&origin)
            .is_some_and(|c| c.expires > Instant::now());
        if !fresh {
            let (rule, ttl) = self.load_robots(&origin).await;
            cache.insert(
                origin.clone(),
                CachedRobots {
                    rule,
                    expires: Instant::now() + ttl,
                },
            );
        }
        match cache.get(&origin).map(|c| &c.rule) {
            Some(RobotsRule::Rules(robot)) => {
                let delay = robot
                    .delay
                    .filter(|d| d.is_finite() && *d > 0.0)
                    // A site asking for more than a minute between requests is capped there.
                    .map(|d| Duration::from_secs_f32(d.min(60.0)))
                    .unwrap_or_default();
                (robot.allowed(url.as_str()), delay)
            }
            Some(RobotsRule::DisallowAll) => (false, Duration::ZERO),
            Some(RobotsRule::AllowAll) | None => (true, Duration::ZERO),
        }
    }

    async fn load_robots(&self, origin: &str) -> (RobotsRule, Duration) {
        let robots_url = format!("{origin}/robots.txt");
        self.pace(Duration::ZERO).await;
        let req = self.client.get(&robots_url);
        let answer = self.send(&robots_url, req, false).await;
        self.rebook(Duration::ZERO).await;
        match answer {
            Ok(Fetched::Page(page)) => {
                match texting_robots::Robot::new(&self.robots_agent, page.body.as_bytes()) {
                    Ok(robot) => {
                        tracing::info!(source = %self.source, url = %robots_url, "robots.txt loaded");
                        (RobotsRule::Rules(Box::new(robot)), ROBOTS_TTL)
                    }
                    Err(e) => {
                        // Unparseable rules say nothing we can honour: like a missing file.
                        tracing::warn!(source = %self.source, url = %robots_url, error = %e, "robots.txt unparseable; treating as allow-all");
                        (RobotsRule::AllowAll, ROBOTS_TTL)
                    }
                }
            }
            Err(FetchError::NotText { reason, .. }) => {
                // Binary rules say nothing we can honour: like unparseable ones.
                tracing::warn!(source = %self.source, url = %robots_url, error = %reason, "robots.txt is not text; treating as allow-all");
                (RobotsRule::AllowAll, ROBOTS_TTL)
            }
            Err(FetchError::Status { status, .. })
                if (400..500).contains(&status) && status != 429 =>
            {
                tracing::info!(source = %self.source, url = %robots_url, status, "no robots.txt; everything allowed");
                (RobotsRule::AllowAll, ROBOTS_TTL)
            }
            Ok(Fetched::NotModified { .. }) => (RobotsRule::AllowAll, ROBOTS_TTL),
            Err(e) => {
                tracing::warn!(source = %self.source, url = %robots_url, error = %e, "robots.txt unavailable; disallowing the site for now");
                (RobotsRule::DisallowAll, ROBOTS_ERROR_TTL)
            }
        }
    }
}

/// Follows up to `max` redirects, each hop checked against the source's egress policy (a hop to
/// another host is refused even when it resolves to a public address).
fn redirect_policy(egress: EgressPolicy, max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error(format!("more than {max} redirects"));
        }
        match egress.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn header_map(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in h {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed() {
        let u = || "http://x.test/".to_string();
        let m = || "m".to_string();
        let all = [
            FetchError::InvalidUrl {
                url: u(),
                message: m(),
            },
            FetchError::RobotsDisallowed { url: u() },
            FetchError::Timeout { url: u() },
            FetchError::Connect {
                url: u(),
                message: m(),
            },
            FetchError::TooManyRedirects { url: u(), max: 1 },
            FetchError::Status {
                url: u(),
                status: 500,
            },
            FetchError::TooLarge { url: u(), limit: 1 },
            FetchError::Body {
                url: u(),
                message: m(),
            },
            FetchError::NotText {
                url: u(),
                reason: NotText::BinaryFormat("PNG"),
            },
            FetchError::Request {
                url: u(),
                message: m(),
            },
            FetchError::Blocked {
                url: u(),
                refusal: EgressRefusal::Host { host: m() },
            },
            FetchError::Blocked {
                url: u(),
                refusal: EgressRefusal::Address {
                    host: m(),
                    addresses: m(),
                },
            },
        ];
        let kinds: Vec<&str> = all.iter().map(FetchError::kind).collect();
        assert_eq!(kinds, FETCH_ERROR_KINDS);
    }

    #[test]
    fn interval_is_the_stricter_of_delay_and_rate() {
        let r = |rpm, delay_ms| RateLimit {
            requests_per_minute: rpm,
            delay_ms,
        };
        assert_eq!(min_interval(&r(10, 1000)), Duration::from_secs(6));
        assert_eq!(min_interval(&r(120, 1000)), Duration::from_secs(1));
        assert_eq!(min_interval(&r(0, 250)), Duration::from_millis(250));
    }
}
