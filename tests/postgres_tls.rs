//! PostgreSQL over TLS (issue 16): managed PostgreSQL requires TLS, so the daemon's pool must
//! connect with `sslmode=verify-full` against the server's certificate, and a wrong CA must fail
//! at once with an error that says so, not hang or retry for ever. Runs against this machine's
//! real server (Debian's PostgreSQL runs with `ssl = on` and a self-signed certificate for
//! `localhost`, which is then its own CA).

use sqlx::PgPool;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn server() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    url.rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .unwrap()
}

/// The server's certificate file, as the server itself reports it.
async fn server_certificate() -> PathBuf {
    let pool = PgPool::connect(&format!("{}/postgres", server()))
        .await
        .unwrap();
    let (ssl, cert): (String, String) =
        sqlx::query_as("SELECT current_setting('ssl'), current_setting('ssl_cert_file')")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(
        ssl, "on",
        "this test needs PostgreSQL with ssl = on (Debian's default)"
    );
    let cert = PathBuf::from(cert);
    assert!(cert.is_file(), "{} is not readable here", cert.display());
    cert
}

/// The same server, addressed by the certificate's name (`localhost`), over TLS.
fn tls_url(mode: &str, root_cert: &std::path::Path) -> String {
    let port = server()
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap();
    format!(
        "postgres://postgres@localhost:{port}/postgres?sslmode={mode}&sslrootcert={}",
        root_cert.display()
    )
}

#[tokio::test]
async fn the_pool_connects_with_verify_full_and_the_session_is_encrypted() {
    let ca = server_certificate().await;
    let pool = tradepipe::store::postgres::connect(&tls_url("verify-full", &ca), 1)
        .await
        .unwrap_or_else(|e| panic!("TLS connection refused: {e}"));
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl, "the session is not encrypted");
    assert!(version.is_some_and(|v| v.starts_with("TLS")));
    // `require` (encrypt, do not verify) works as well.
    let pool = tradepipe::store::postgres::connect(&tls_url("require", &ca), 1)
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl);
}

#[tokio::test]
async fn a_wrong_certificate_authority_fails_at_once_with_a_clear_error() {
    server_certificate().await;
    // A CA that did not sign the server's certificate: a fresh one made for the test.
    let dir = std::env::temp_dir().join(format!("tp-wrong-ca-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cert = tradepipe_testkit::tls::TestCa::make(&dir, "wrong").ca_cert;

    let started = Instant::now();
    let err = tradepipe::store::postgres::connect(&tls_url("verify-full", &cert), 1)
        .await
        .expect_err("a server certificate the CA did not sign was accepted");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // The whole chain: the store's context and the driver's reason.
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    let text = text.to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls"),
        "the error does not say what is wrong: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
