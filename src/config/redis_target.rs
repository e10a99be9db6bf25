//! How to reach Redis: the URL and, for `rediss://`, whom to trust and who we are. Every Redis
//! connection the daemon makes (publishers, crawl locks, sessions, probes) is built here, so TLS
//! cannot be configured for one and forgotten for another.

use super::Secret;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[redis.tls]`: certificates for a `rediss://` URL (rustls). Without `ca_file` the server's
/// certificate is checked against the system's trust store; with it, against that file only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisTls {
    /// PEM file with the CA certificate(s) that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for a server with `tls-auth-clients yes`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
}

impl RedisTls {
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert_file.is_none() && self.client_key_file.is_none()
    }
}

/// A Redis server to connect to. `Display` shows the URL without its password.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    url: Secret,
    tls: RedisTls,
}

impl RedisTarget {
    pub fn new(url: Secret, tls: RedisTls) -> RedisTarget {
        RedisTarget { url, tls }
    }

    /// A target given by its URL alone (`redis://`, or `rediss://` trusting the system's CAs).
    pub fn from_url(url: &str) -> RedisTarget {
        RedisTarget::new(Secret(url.to_string()), RedisTls::default())
    }

    /// The client for this target. Reading a certificate file that is missing or not PEM fails
    /// here, naming the file; a server whose certificate the CA did not sign fails on connect,
    /// at once (a TLS alert), with rustls' reason (`invalid peer certificate: UnknownIssuer`).
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        if self.tls.is_empty() {
            return redis::Client::open(self.url.expose());
        }
        let client_tls = match (&self.tls.client_cert_file, &self.tls.client_key_file) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read_pem("redis.tls.client_cert_file", cert)?,
                client_key: read_pem("redis.tls.client_key_file", key)?,
            }),
            (None, None) => None,
            _ => {
                return Err(config_error(
                    "redis.tls: client_cert_file and client_key_file go together".into(),
                ));
            }
        };
        let root_cert = match &self.tls.ca_file {
            Some(path) => Some(read_pem("redis.tls.ca_file", path)?),
            None => None,
        };
        redis::Client::build_with_tls(
            self.url.expose(),
            redis::TlsCertificates {
                client_tls,
                root_cert,
            },
        )
    }
}

impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.url.fmt(f)
    }
}

fn read_pem(key: &str, path: &Path) -> redis::RedisResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| config_error(format!("{key} {}: {e}", path.display())))
}

fn config_error(detail: String) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "Redis TLS configuration",
        detail,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let target = RedisTarget::new(
            Secret("rediss://:pw@127.0.0.1:6380/0".into()),
            RedisTls {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..RedisTls::default()
            },
        );
        let e = target.client().unwrap_err().to_string();
        assert!(
            e.contains("redis.tls.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        assert!(!target.to_string().contains("pw"), "{target}");
    }

    #[test]
    fn half_a_client_certificate_is_refused() {
        let target = RedisTarget::new(
            Secret("rediss://127.0.0.1:6380/0".into()),
            RedisTls {
                client_cert_file: Some("/etc/hostname".into()),
                ..RedisTls::default()
            },
        );
        let e = target.client().unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
    }
}
