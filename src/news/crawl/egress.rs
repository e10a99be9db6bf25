//! Where a source's fetcher may connect: the crawler's defence against server-side request
//! forgery (docs/SECURITY.md).
//!
//! A news site decides which URLs the crawler fetches (feed items, listing links, redirects), so
//! a compromised or malicious site could point it at a cloud metadata endpoint
//! (169.254.169.254) or an internal admin page and have the answer stored and published. Two
//! checks stop that, both in the fetcher so that no caller can skip them:
//! - **Host**: every URL, and every redirect hop, must be on the source's own host (its
//!   `base_url` and `feed_url` hosts) or one the source lists in `allowed_hosts`. This holds
//!   even for a source that opted into private addresses.
//! - **Address**: unless the source sets `allow_private_network = true`, a connection is made
//!   only to globally routable addresses. The check is on the addresses the name *resolved to*
//!   (a resolver that drops the others), so a name that resolves to 10.0.0.5 on the second
//!   lookup (DNS rebinding) still cannot reach it; IP-literal URLs, which skip the resolver, are
//!   checked on the literal.

use crate::domain::NewsSource;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use url::{Host, Url};

/// Why a URL or an address was refused. `kind()` is the metrics label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressRefusal {
    #[error("host {host} is not the source's host nor listed in its allowed_hosts")]
    Host { host: String },
    #[error(
        "{host} is on a non-public address ({addresses}); a source you run on a private network \
         must set allow_private_network = true"
    )]
    Address { host: String, addresses: String },
}

impl EgressRefusal {
    pub fn kind(&self) -> &'static str {
        match self {
            EgressRefusal::Host { .. } => "blocked_host",
            EgressRefusal::Address { .. } => "blocked_address",
        }
    }
}

/// One `allowed_hosts` entry: a host name, or `*.example.com` for example.com and every name
/// under it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Exact(String),
    WithSubdomains(String),
}

impl HostRule {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(h) => h == host,
            HostRule::WithSubdomains(domain) => {
                host == domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
        }
    }
}

/// A source's egress policy (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    hosts: Arc<Vec<HostRule>>,
    allow_private_network: bool,
}

impl EgressPolicy {
    /// The policy of `source`: its base and feed hosts plus `allowed_hosts`. An error names the
    /// entry that cannot be a host.
    pub fn for_source(source: &NewsSource) -> Result<EgressPolicy, String> {
        let mut hosts = Vec::new();
        for u in std::iter::once(&source.base_url).chain(source.feed_url.iter()) {
            let parsed = Url::parse(u).map_err(|e| format!("{u:?}: {e}"))?;
            let host = host_key(&parsed).ok_or_else(|| format!("{u:?} has no host"))?;
            hosts.push(HostRule::Exact(host));
        }
        for entry in &source.allowed_hosts {
            hosts.push(parse_host_rule(entry)?);
        }
        Ok(EgressPolicy {
            hosts: Arc::new(hosts),
            allow_private_network: source.allow_private_network,
        })
    }

    pub fn allows_private_network(&self) -> bool {
        self.allow_private_network
    }

    /// Checks a URL before it is requested or followed as a redirect: its host must be allowed
    /// and, when it is an IP literal (no resolution happens for those), public unless the source
    /// opted in.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressRefusal> {
        let Some(host) = host_key(url) else {
            return Err(EgressRefusal::Host {
                host: String::new(),
            });
        };
        if !self.hosts.iter().any(|rule| rule.matches(&host)) {
            return Err(EgressRefusal::Host { host });
        }
        if !self.allow_private_network {
            let literal = match url.host() {
                Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| !is_public(*ip)) {
                return Err(EgressRefusal::Address {
                    host,
                    addresses: ip.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The DNS resolver the source's HTTP client must use: `None` (the system resolver, as is)
    /// when the source opted into private addresses, else one that only returns public ones.
    pub fn resolver(&self) -> Option<Arc<PublicOnlyResolver>> {
        (!self.allow_private_network).then(|| Arc::new(PublicOnlyResolver))
    }
}

/// The host as compared against the rules: lower case, IPv6 without brackets, no trailing dot.
fn host_key(url: &Url) -> Option<String> {
    let host = match url.host()? {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    Some(host)
}

fn parse_host_rule(entry: &str) -> Result<HostRule, String> {
    let trimmed = entry.trim().trim_end_matches('.').to_ascii_lowercase();
    let (wild, name) = match trimmed.strip_prefix("*.") {
        Some(rest) => (true, rest.to_string()),
        None => (false, trimmed),
    };
    // A host, not a URL: no scheme, port, path or wildcard in the middle.
    let plausible = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
        && !name.starts_with('.');
    if !plausible {
        return Err(format!(
            "allowed_hosts entry {entry:?} is not a host name (write \"news.example.com\" or \
             \"*.example.com\", without scheme, port or path)"
        ));
    }
    Ok(if wild {
        HostRule::WithSubdomains(name)
    } else {
        HostRule::Exact(name)
    })
}

/// Whether `ip` is globally routable: not loopback, private (RFC 1918, fc00::/7), shared
/// (100.64.0.0/10), link-local, unspecified, broadcast, multicast, documentation, benchmarking
/// or reserved. IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are
/// judged by that address, so `::ffff:169.254.169.254` is as refused as the address itself.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0 included
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local: cloud metadata lives here
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) carry an IPv4 address in
    // the low 32 bits; 6to4 (2002::/16) in bits 16..48.
    let low_v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        // :: and ::1 are in here too, and judged as 0.0.0.0 and 0.0.0.1: not public.
        return is_public_v4(low_v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(low_v4);
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return is_public_v4(v4);
    }
    !((s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed inside)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: tunnels to an address we cannot see
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
}

/// A resolver that returns only public addresses (see [`is_public`]), and refuses a name that
/// has none: the HTTP client cannot connect to what it is never given.
#[derive(Debug, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| is_public(a.ip()));
            if public.is_empty() {
                let addresses = refused
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let refusal: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(EgressRefusal::Address { host, addresses });
                return Err(refusal);
            }
            if !refused.is_empty() {
                tracing::warn!(
                    host,
                    refused = refused.len(),
                    "name resolves to public and non-public addresses; connecting to the public ones only"
                );
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The refusal somewhere in an error's source chain (the HTTP client wraps the resolver's and
/// the redirect policy's errors).
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<EgressRefusal> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<EgressRefusal>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.7",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip(s)), "{s} must not count as public");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            assert!(is_public(ip(s)), "{s} must count as public");
        }
    }

    fn source(base: &str, feed: Option<&str>, allowed: &[&str], private: bool) -> NewsSource {
        let toml = format!(
            "name = \"s\"\nbase_url = {base:?}\n{}type = \"RSS\"\nallowed_hosts = {allowed:?}\n\
             allow_private_network = {private}\n",
            feed.map(|f| format!("feed_url = {f:?}\n"))
                .unwrap_or_default()
        );
        toml::from_str(&toml).unwrap()
    }

    fn check(p: &EgressPolicy, url: &str) -> Result<(), &'static str> {
        p.check_url(&Url::parse(url).unwrap()).map_err(|r| r.kind())
    }

    #[test]
    fn only_the_sources_hosts_and_its_allowed_hosts_pass() {
        let p = EgressPolicy::for_source(&source(
            "https://News.example.com/",
            Some("https://feeds.example.net/rss"),
            &["cdn.example.org", "*.example.io"],
            false,
        ))
        .unwrap();
        assert_eq!(check(&p, "https://news.example.com/a"), Ok(()));
        assert_eq!(check(&p, "http://NEWS.example.com./b"), Ok(()));
        assert_eq!(check(&p, "https://feeds.example.net/x"), Ok(()));
        assert_eq!(check(&p, "https://cdn.example.org/y"), Ok(()));
        assert_eq!(check(&p, "https://example.io/"), Ok(()));
        assert_eq!(check(&p, "https://a.b.example.io/"), Ok(()));
        assert_eq!(check(&p, "https://example.com/"), Err("blocked_host"));
        assert_eq!(check(&p, "https://evilexample.io/"), Err("blocked_host"));
        assert_eq!(
            check(&p, "https://news.example.com.evil.test/"),
            Err("blocked_host")
        );
        assert_eq!(
            check(&p, "http://169.254.169.254/latest/"),
            Err("blocked_host")
        );
    }

    #[test]
    fn private_literals_need_the_opt_in_and_other_hosts_stay_refused_with_it() {
        let closed =
            EgressPolicy::for_source(&source("http://127.0.0.1:18771/", None, &[], false)).unwrap();
        assert_eq!(
            check(&closed, "http://127.0.0.1:18771/a"),
            Err("blocked_address")
        );
        // 2130706433 is 127.0.0.1 written as one number; the URL parser normalises it.
        assert_eq!(
            check(&closed, "http://2130706433:18771/a"),
            Err("blocked_address")
        );
        assert!(closed.resolver().is_some());

        let open =
            EgressPolicy::for_source(&source("http://127.0.0.1:18771/", None, &[], true)).unwrap();
        assert_eq!(check(&open, "http://127.0.0.1:18771/a"), Ok(()));
        assert_eq!(
            check(&open, "http://127.0.0.2:18772/iam"),
            Err("blocked_host")
        );
        assert_eq!(check(&open, "http://localhost:18771/"), Err("blocked_host"));
        assert!(open.resolver().is_none());
    }

    #[test]
    fn allowed_hosts_entries_must_be_hosts() {
        for bad in ["https://x.test", "x.test/path", "", "*.", "a b"] {
            let s = source("https://x.test/", None, &[bad], false);
            assert!(EgressPolicy::for_source(&s).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_with_only_private_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let err = match PublicOnlyResolver.resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refusal = refusal_in(err.as_ref()).expect("the refusal is in the chain");
        assert_eq!(refusal.kind(), "blocked_address");
        assert!(refusal.to_string().contains("127.0.0.1"), "{refusal}");
    }
}
