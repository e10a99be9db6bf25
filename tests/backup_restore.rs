//! scripts/backup and scripts/restore against the real PostgreSQL (and Redis when
//! TRADEPIPE_TEST_REDIS_URL is set): back up, drop the database, restore, find the same data;
//! a tampered backup is refused. Uses its own uniquely named database.
//! Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).

use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn server_url() -> String {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    url.rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .unwrap()
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap()
}

/// Every row of the tables the pipelines write, as text, per table.
async fn contents(url: &str) -> BTreeMap<&'static str, Vec<String>> {
    let pool = PgPool::connect(url).await.unwrap();
    let mut out = BTreeMap::new();
    for t in [
        "trading.symbols",
        "trading.price_candles",
        "trading.price_ticks",
        "content.raw_articles",
        "content.articles",
        "trading.symbol_summary",
    ] {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {t} t ORDER BY 1"))
                .fetch_all(&pool)
                .await
                .unwrap();
        out.insert(t, rows);
    }
    pool.close().await;
    out
}

fn script(name: &str, db_url: &str, args: &[&Path], extra: &[&str]) -> std::process::Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Under the widest umask, so the scripts' own permissions are what is tested.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(root.join("scripts").join(name))
        .args(args)
        .args(extra)
        .env("TRADEPIPE_DATABASE_URL", db_url);
    match std::env::var("TRADEPIPE_TEST_REDIS_URL") {
        Ok(r) => cmd.env("TRADEPIPE_REDIS_URL", format!("{r}/15")),
        Err(_) => cmd.env("BACKUP_REDIS", "0"),
    };
    let out = cmd.output().unwrap();
    eprintln!(
        "{name}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn backup_drop_restore_gives_back_the_same_data_and_a_tampered_backup_is_refused() {
    let name = format!("tp_backup_test_{}", std::process::id());
    let url = format!("{}/{name}", server_url());
    let mut admin = admin().await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    tradepipe::store::migrate(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO trading.symbols (id, base_asset, quote_asset) VALUES ('BTCUSDT', 'BTC', 'USDT');
         SELECT trading.ensure_tick_partition('2026-11-24'), trading.ensure_tick_partition('2026-11-25');
         INSERT INTO trading.price_ticks (symbol_id, trade_id, price, quantity, timestamp, is_buyer_maker)
         SELECT 'BTCUSDT', n, 60000.12345678 + n, 0.00012345, '2026-11-24T12:00:00Z'::timestamptz + n * interval '4 seconds', n % 2 = 0
         FROM generate_series(1, 20000) n;
         INSERT INTO trading.price_candles (symbol_id, interval, open_time, close_time, open, high, low,
             close, volume, quote_volume, trade_count, first_trade_id, last_trade_id, is_closed)
         SELECT 'BTCUSDT', '1m', t, t + interval '59.999 seconds', 1.5, 2.5, 1.0, 2.0, 3.12345678,
                4.1234567890123456, 3, 1, 3, true
         FROM generate_series('2026-11-24'::timestamptz, '2026-11-25', interval '1 minute') t;
         REFRESH MATERIALIZED VIEW trading.symbol_summary;
         INSERT INTO content.raw_articles (url, url_hash, source_name, raw_html, http_status, crawled_at)
         VALUES ('https://n.example/a', encode(sha256('a'), 'hex'), 'n', '<p>é</p>', 200, now());
         INSERT INTO content.articles (url, url_hash, title, body, source_name, crawled_at, doc, raw_article_id)
         SELECT url, url_hash, 'Bitcoin rises', 'Body', 'n', crawled_at, '{\"k\": [1, 2.50]}', id
         FROM content.raw_articles;",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let before = contents(&url).await;
    assert_eq!(before["trading.price_ticks"].len(), 20_000);

    let dir = std::env::temp_dir().join(format!("tp-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(script("backup", &url, &[&dir], &[]).status.success());
    let stamp = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    let manifest = std::fs::read_to_string(stamp.join("MANIFEST")).unwrap();
    assert!(
        manifest.contains("table trading.price_ticks 20000 "),
        "{manifest}"
    );
    // The dump holds auth.users: nothing of the backup is open to group or others.
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "the backup root has mode {mode:o}");
    let checked = tradepipe_testkit::support::assert_no_permission_bits(&dir, 0o077);
    assert!(
        checked >= 3,
        "only {checked} entries under {}",
        dir.display()
    );

    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    let restored = script("restore", &url, &[&stamp], &[]);
    assert!(restored.status.success());
    assert!(String::from_utf8_lossy(&restored.stdout).contains("checksums match"));
    assert_eq!(contents(&url).await, before);

    // An existing database is not replaced without --force.
    assert!(!script("restore", &url, &[&stamp], &[]).status.success());

    // A manifest that disagrees with the dump (as after a silent corruption) fails the restore.
    std::fs::write(
        stamp.join("MANIFEST"),
        manifest.replace(
            "table trading.price_ticks 20000 ",
            "table trading.price_ticks 20001 ",
        ),
    )
    .unwrap();
    let refused = script("restore", &url, &[&stamp], &["--force"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("differ"));

    // A damaged dump file is refused before anything is touched.
    std::fs::write(stamp.join("MANIFEST"), &manifest).unwrap();
    let mut dump = std::fs::read(stamp.join("postgres.dump")).unwrap();
    let mid = dump.len() / 2;
    dump[mid] ^= 0x55;
    std::fs::write(stamp.join("postgres.dump"), dump).unwrap();
    let refused = script("restore", &url, &[&stamp], &["--force"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not match"));

    // A backup others could have written to is refused before anything is touched.
    std::fs::write(stamp.join("MANIFEST"), &manifest).unwrap();
    std::fs::set_permissions(&stamp, std::fs::Permissions::from_mode(0o770)).unwrap();
    let refused = script("restore", &url, &[&stamp], &["--force"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("writable by group or others"));

    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
