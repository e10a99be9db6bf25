//! TLS test equipment: a throw-away certificate authority made with the machine's `openssl`, and
//! a real `redis-server` (Debian's, built with TLS) that listens on TLS only. Used by the tests
//! that the daemon's connections verify what they connect to (issue 16).
//!
//! Test equipment, as `support` is: a set-up step that fails (no openssl, no redis-server) must
//! fail the test that asked for it, so these helpers panic with what was missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CA and one server certificate it signed, for `localhost` and `127.0.0.1`, in `dir`.
pub struct TestCa {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is needed to make test certificates (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// Makes a fresh CA (`name` in its subject, so two CAs never look alike) and a server
    /// certificate valid for two days.
    pub fn make(dir: &Path, name: &str) -> TestCa {
        std::fs::create_dir_all(dir).expect("certificate directory");
        let subject = format!("/CN=tradepipe test CA {name}");
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
                "ca.crt", "-days", "2", "-subj", &subject,
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("extensions file");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        TestCa {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

/// A `redis-server` listening with TLS only (no plain port), killed on drop.
pub struct TlsRedis {
    child: Child,
    pub port: u16,
}

impl TlsRedis {
    pub fn start(ca: &TestCa) -> TlsRedis {
        let port = crate::support::free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&ca.server_cert)
            .arg("--tls-key-file")
            .arg(&ca.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&ca.ca_cert)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&ca.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "TLS redis-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsRedis { child, port }
    }

    /// The URL by the certificate's name.
    pub fn url(&self) -> String {
        format!("rediss://localhost:{}/0", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
