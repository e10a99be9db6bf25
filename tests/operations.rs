//! Operations: the metric catalogue, the Prometheus alert rules and the Grafana dashboards are
//! checked against each other and against the real daemon. promtool and prometheus come from
//! Debian's `prometheus` package (scripts/services.sh installs it); without them these tests
//! fail, saying so.
//!
//! - `docs/metrics.md` and `src/telemetry/catalogue.rs` name the same metrics, types and labels;
//! - `promtool check rules` and `promtool test rules` pass on `deploy/prometheus/`;
//! - every metric an alert or a dashboard panel queries is in the catalogue;
//! - live: the real daemon's `/metrics` passes `promtool check metrics`, exports every metric a
//!   dashboard panel queries, and a real Prometheus scrapes it, loads the alert rules, evaluates
//!   them and every panel query without error, and returns the daemon's trade count.

use regex::Regex;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tradepipe::telemetry::catalogue::{self, CATALOGUE, Kind, MetricDef, Values};
use tradepipe_testkit::support::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a tool that must be installed; a missing tool fails the test with the remedy.
fn tool(name: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(name)
        .args(args)
        .current_dir(repo("."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{name} is required ({e}): install Debian's `prometheus` package \
                 (scripts/services.sh does so on CI when run as root)"
            )
        });
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// PromQL: which metric names does an expression read?

const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

/// The metric names an expression selects: identifiers that are not functions, keywords,
/// label names, label values, durations or Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let strings = Regex::new(r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"#).unwrap();
    let matchers = Regex::new(r"\{[^}]*\}").unwrap();
    let ranges = Regex::new(r"\[[^\]]*\]").unwrap();
    let grouping =
        Regex::new(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)").unwrap();
    let ident = Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    let e = strings.replace_all(expr, "\"\"");
    let e = matchers.replace_all(&e, " ");
    let e = ranges.replace_all(&e, " ");
    let e = grouping.replace_all(&e, " ");
    let mut out = BTreeSet::new();
    for m in ident.find_iter(&e) {
        let before = e[..m.start()].chars().last();
        // `$var`, and the exponent of a number such as 2e9.
        if before.is_some_and(|c| c == '$' || c.is_ascii_digit() || c == '.') {
            continue;
        }
        let after = e[m.end()..].trim_start();
        if after.starts_with('(') || PROMQL_KEYWORDS.contains(&m.as_str()) {
            continue;
        }
        out.insert(m.as_str().to_string());
    }
    out
}

/// The catalogue entry a series name belongs to (`x_bucket`, `x_sum`, `x_count` of a histogram
/// or summary `x`).
fn catalogued(series: &str) -> Option<&'static MetricDef> {
    if let Some(m) = catalogue::find(series) {
        return Some(m);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix)
            && let Some(m) = catalogue::find(base)
        {
            let ok = match m.kind {
                Kind::Histogram(_) => true,
                Kind::Summary => suffix != "_bucket",
                _ => false,
            };
            if ok {
                return Some(m);
            }
        }
    }
    None
}

/// Series names only show up once their label values do (a policy, a horizon, a price).
fn appears_at_run_time(m: &MetricDef) -> bool {
    m.labels.iter().any(|(_, v)| *v == Values::Runtime)
}

#[test]
fn promql_metric_names_are_extracted() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (actor, le) (rate(tradepipe_actor_handler_seconds_bucket{instance=~"$instance", actor!="x"}[$__rate_interval]))) / on (instance) group_left (job) up > 2e9 and time() - process_start_time_seconds offset 1d"#,
    );
    let want: BTreeSet<String> = [
        "tradepipe_actor_handler_seconds_bucket",
        "up",
        "process_start_time_seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, want);
}

// ---------------------------------------------------------------------------------------------
// The catalogue and docs/metrics.md.

#[test]
fn metrics_doc_and_catalogue_name_the_same_metrics_types_and_labels() {
    let doc = std::fs::read_to_string(repo("docs/metrics.md")).unwrap();
    let row = Regex::new(r"^\| `([a-z_0-9]+)` \| (\w+) \| ([^|]*) \|").unwrap();
    let label = Regex::new(r"`([a-z_]+)`").unwrap();
    let mut documented = BTreeMap::new();
    for line in doc.lines() {
        if let Some(c) = row.captures(line) {
            let labels: Vec<String> = label
                .captures_iter(&c[3])
                .map(|l| l[1].to_string())
                .collect();
            let dup = documented.insert(c[1].to_string(), (c[2].to_string(), labels));
            assert!(dup.is_none(), "{} documented twice", &c[1]);
        }
    }
    let mut problems = Vec::new();
    for m in CATALOGUE {
        match documented.remove(m.name) {
            None => problems.push(format!("{}: in the code, not in docs/metrics.md", m.name)),
            Some((kind, labels)) => {
                if kind != m.kind.as_str() {
                    problems.push(format!(
                        "{}: doc says {kind}, code {}",
                        m.name,
                        m.kind.as_str()
                    ));
                }
                let code: Vec<String> = m.labels.iter().map(|(l, _)| l.to_string()).collect();
                if labels != code {
                    problems.push(format!("{}: doc labels {labels:?}, code {code:?}", m.name));
                }
            }
        }
    }
    for name in documented.keys() {
        problems.push(format!("{name}: in docs/metrics.md, not in the code"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_fetch_error_kind_is_a_catalogued_label_value() {
    let def = CATALOGUE
        .iter()
        .find(|m| m.name == "tradepipe_crawl_errors_total")
        .expect("catalogued");
    let catalogued: BTreeSet<&str> = def
        .labels
        .iter()
        .find_map(|(name, values)| match values {
            Values::Fixed(v) if *name == "kind" => Some(v.iter().copied().collect()),
            _ => None,
        })
        .expect("a fixed kind label");
    let emitted: BTreeSet<&str> = tradepipe::news::crawl::fetch::FETCH_ERROR_KINDS
        .iter()
        .copied()
        .collect();
    assert_eq!(catalogued, emitted);
}

// ---------------------------------------------------------------------------------------------
// Alert rules.

fn alert_names() -> Vec<String> {
    let rules = std::fs::read_to_string(repo("deploy/prometheus/alerts.yml")).unwrap();
    let re = Regex::new(r"(?m)^\s*- alert: (\w+)").unwrap();
    re.captures_iter(&rules).map(|c| c[1].to_string()).collect()
}

/// The `expr:` of every rule (single-line or `|` block).
fn alert_exprs() -> Vec<String> {
    let rules = std::fs::read_to_string(repo("deploy/prometheus/alerts.yml")).unwrap();
    let mut out = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        if rest.trim() == "|" {
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                if !next.trim().is_empty() && next.len() - next.trim_start().len() <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push(' ');
                lines.next();
            }
            out.push(block);
        } else {
            out.push(rest.trim().to_string());
        }
    }
    out
}

#[test]
fn alert_rules_pass_promtool_check_and_read_catalogued_metrics() {
    let out = tool(
        "promtool",
        &["check", "rules", "deploy/prometheus/alerts.yml"],
        None,
    );
    let said = text(&out);
    assert!(out.status.success(), "promtool check rules: {said}");
    let names = alert_names();
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", names.len())),
        "{said}"
    );
    let exprs = alert_exprs();
    assert_eq!(exprs.len(), names.len(), "one expr per alert");
    for (name, expr) in names.iter().zip(&exprs) {
        for metric in metric_names(expr) {
            assert!(
                metric == "up" || catalogued(&metric).is_some(),
                "{name} reads {metric}, which the daemon does not export"
            );
        }
    }
    // The issue's list of situations, each covered by at least one alert.
    for needed in [
        "TradepipeFeedDisconnected",
        "TradepipeTradesGapNotBackfilled",
        "TradepipeCandleLag",
        "TradepipeWriterBacklog",
        "TradepipeSpoolGrowing",
        "TradepipeActorRestarting",
        "TradepipeCrawlErrors",
        "TradepipeAnalysisBacklog",
        "TradepipePredictionHitRateLow",
        "TradepipeRetentionFailing",
        "TradepipePostgresUnreachable",
        "TradepipeRedisUnreachable",
    ] {
        assert!(names.iter().any(|n| n == needed), "no alert {needed}");
    }
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests_and_each_alert_is_shown_firing() {
    let files = [
        "deploy/prometheus/alerts_test.yml",
        "deploy/prometheus/alerts_days_test.yml",
    ];
    let mut args = vec!["test", "rules"];
    args.extend(files);
    let out = tool("promtool", &args, None);
    assert!(out.status.success(), "promtool test rules:\n{}", text(&out));
    // Every alert has a test case in which it fires (exp_alerts right after its name).
    let tests: String = files
        .iter()
        .map(|f| std::fs::read_to_string(repo(f)).unwrap())
        .collect();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in alert_names() {
        let fires = lines
            .windows(2)
            .any(|w| w[0] == format!("alertname: {name}") && w[1].starts_with("exp_alerts:"));
        assert!(fires, "no test in {files:?} shows {name} firing");
    }
}

// ---------------------------------------------------------------------------------------------
// Grafana dashboards.

struct Panel {
    dashboard: String,
    title: String,
    exprs: Vec<String>,
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    ["market", "news-analysis", "runtime"]
        .iter()
        .map(|name| {
            let path = repo(&format!("grafana/dashboards/{name}.json"));
            let json = std::fs::read_to_string(&path).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name.to_string(), v)
        })
        .collect()
}

/// Every query of every panel (rows' nested panels too) and of every templating variable.
fn panels() -> Vec<Panel> {
    fn walk(dashboard: &str, panels: &serde_json::Value, out: &mut Vec<Panel>) {
        for p in panels.as_array().into_iter().flatten() {
            let exprs: Vec<String> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str().map(str::to_string))
                .collect();
            if p["type"] != "row" {
                out.push(Panel {
                    dashboard: dashboard.to_string(),
                    title: p["title"].as_str().unwrap_or("?").to_string(),
                    exprs,
                });
            }
            walk(dashboard, &p["panels"], out);
        }
    }
    let mut out = Vec::new();
    for (name, d) in dashboards() {
        walk(&name, &d["panels"], &mut out);
        for var in d["templating"]["list"].as_array().into_iter().flatten() {
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str())
                .unwrap_or("");
            // label_values(metric, label): the metric is a selector.
            if let Some(inner) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
            {
                out.push(Panel {
                    dashboard: name.clone(),
                    title: format!("variable ${}", var["name"].as_str().unwrap_or("?")),
                    exprs: vec![inner.0.to_string()],
                });
            }
        }
    }
    out
}

fn panel_metrics(p: &Panel) -> BTreeSet<String> {
    p.exprs.iter().flat_map(|e| metric_names(e)).collect()
}

#[test]
fn dashboards_show_what_the_issue_asks_with_catalogued_metrics_only() {
    let all = panels();
    for p in &all {
        assert!(
            !p.exprs.is_empty(),
            "{} / {}: no query",
            p.dashboard,
            p.title
        );
        for m in panel_metrics(p) {
            assert!(
                catalogued(&m).is_some(),
                "{} / {} queries {m}, which is not in the catalogue",
                p.dashboard,
                p.title
            );
        }
    }
    let uses = |dashboard: &str, metric: &str| {
        all.iter()
            .filter(|p| p.dashboard == dashboard)
            .any(|p| panel_metrics(p).iter().any(|m| m.starts_with(metric)))
    };
    for (dashboard, metrics) in [
        (
            "market",
            &[
                "tradepipe_trades_received_total",  // trades/s per symbol
                "tradepipe_feed_connected",         // feed status
                "tradepipe_feed_gaps_total",        // gaps
                "tradepipe_feed_backfilled_trades", // backfills
                "tradepipe_feed_lag_seconds",       // candle lag
                "tradepipe_last_trade_price",       // latest prices
            ][..],
        ),
        (
            "news-analysis",
            &[
                "tradepipe_crawl_urls_total",          // articles per source
                "tradepipe_crawl_errors_total",        // crawl errors
                "tradepipe_news_raw_pages",            // backlog: normalization
                "tradepipe_analysis_backlog_articles", // backlog: analysis
                "tradepipe_analysis_sentiment_total",  // sentiment mix
                "tradepipe_prediction_hit_rate",       // prediction hit rate
            ][..],
        ),
        (
            "runtime",
            &[
                "tradepipe_actor_mailbox_depth",
                "tradepipe_actor_restarts_total",
                "tradepipe_writer_batch_ticks",
                "tradepipe_spool_bytes",
                "tradepipe_postgres_ping_seconds",
                "tradepipe_redis_ping_seconds",
                "process_resident_memory_bytes",
            ][..],
        ),
    ] {
        for m in metrics {
            assert!(uses(dashboard, m), "{dashboard} has no panel on {m}");
        }
    }
    // Provisioning points Grafana at the directory docker-compose mounts the dashboards in.
    let provider =
        std::fs::read_to_string(repo("grafana/provisioning/dashboards/tradepipe.yml")).unwrap();
    let compose = std::fs::read_to_string(repo("docker-compose.yml")).unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards"));
    assert!(compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards"));
    for (name, d) in dashboards() {
        assert!(
            d["uid"]
                .as_str()
                .is_some_and(|u| u.starts_with("tradepipe-")),
            "{name}: uid"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Live: the real daemon, promtool and a real Prometheus.

/// Series names in a Prometheus text exposition.
fn exported_series(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// A value of a series in the exposition (`name{labels}` as written by the exporter).
fn exported_value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

async fn get_json(url: &str) -> serde_json::Value {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// Prometheus on a free loopback port with a temporary config and storage, scraping the daemon
/// every second and evaluating the repository's alert rules every second.
fn start_prometheus(target_port: u16, dir: &Path) -> (Proc, u16) {
    let port = free_port();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: tradepipe\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
        rules = repo("deploy/prometheus/alerts.yml").display()
    );
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("prometheus is required ({e}): install Debian's `prometheus` package")
        });
    (
        Proc {
            child: Some(child),
            name: "prometheus",
        },
        port,
    )
}

/// Polls `check` every 250 ms until it returns Some, or fails after `within` saying `what`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Grafana's variables, replaced by what selects everything.
fn as_query(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$instance", ".*")
        .replace("$symbol", ".*")
        .replace("$source", ".*")
}

#[sqlx::test(migrations = false)]
async fn live_daemon_metrics_pass_promtool_feed_every_panel_and_reach_prometheus(pool: PgPool) {
    // The daemon with the market pipeline (replay peer) and the news pipeline (local news site),
    // so every series known from configuration exists.
    let server =
        tradepipe_testkit::news_server::start(tradepipe_testkit::news_server::NewsServerConfig {
            pages_dir: repo("data/news/pages"),
            listen: "127.0.0.1:0".parse().unwrap(),
            sources: 2,
            oversized_bytes: 6 * 1024 * 1024,
        })
        .await
        .expect("news server");
    let dir = std::env::temp_dir().join(format!("tradepipe-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sources_file = dir.join("sources.toml");
    std::fs::write(
        &sources_file,
        tradepipe_testkit::news_server::sources_toml(server.local_addr(), 2),
    )
    .unwrap();
    let trades = demo_trades();
    let (_replay, port) = start_replay(&["--max"]);
    let mut env = DaemonEnv::new(&pool, port, "ops");
    env.extra_env.push((
        "TRADEPIPE_SOURCES_FILE".into(),
        sources_file.display().to_string(),
    ));
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, Duration::from_secs(180)).await;

    // 1. promtool check metrics on the live exposition: format, HELP/TYPE, naming lint.
    let scrape = env.metrics();
    assert!(
        scrape.contains("# TYPE tradepipe_trades_received_total counter"),
        "{scrape}"
    );
    let out = tool("promtool", &["check", "metrics"], Some(&scrape));
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "promtool check metrics on the live /metrics:\n{}",
        text(&out)
    );
    // Every family in the exposition is catalogued (and so documented).
    for series in exported_series(&scrape) {
        assert!(
            catalogued(&series).is_some(),
            "{series} exported, not catalogued"
        );
    }

    // 2. Every dashboard panel's metrics are in the live exposition. The panel list is printed:
    //    it is what a screenshot would have shown.
    let exported = exported_series(&scrape);
    let mut missing = Vec::new();
    let mut later = BTreeSet::new();
    let panels = panels();
    for p in &panels {
        let names = panel_metrics(p);
        println!(
            "{:<14} {:<45} {}",
            p.dashboard,
            p.title,
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for m in names {
            if exported.contains(&m) {
                continue;
            }
            match catalogued(&m) {
                Some(def) if appears_at_run_time(def) => {
                    later.insert(m);
                }
                _ => missing.push(format!("{} / {}: {m}", p.dashboard, p.title)),
            }
        }
    }
    println!(
        "appear with their first event (label values known at run time): {:?}",
        later
    );
    assert!(
        missing.is_empty(),
        "panels query metrics the daemon does not export:\n{}",
        missing.join("\n")
    );
    // The exceptions are only the run-time-labelled families; the price has already appeared.
    assert!(!later.contains("tradepipe_last_trade_price"));

    // 3. A real Prometheus scrapes the daemon and answers with its numbers.
    let (_prometheus, prom) = start_prometheus(env.http_port, &dir.join("prometheus"));
    let base = format!("http://127.0.0.1:{prom}");
    eventually("Prometheus ready", Duration::from_secs(60), || async {
        let ok = reqwest::get(format!("{base}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success());
        ok.then_some(())
    })
    .await;
    let series = r#"tradepipe_trades_received_total{symbol="BTCUSDT"}"#;
    let query = format!(
        "{base}/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(series.as_bytes()).collect::<String>()
    );
    let from_prometheus: f64 = eventually(
        "the trade count in Prometheus",
        Duration::from_secs(60),
        || {
            let query = query.clone();
            async move {
                let v = get_json(&query).await;
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
            }
        },
    )
    .await;
    let from_daemon = exported_value(&env.metrics(), series).expect("the daemon's own count");
    let btc = trades.iter().filter(|t| &*t.symbol == "BTCUSDT").count() as f64;
    assert_eq!(
        from_prometheus, from_daemon,
        "what Prometheus stored is what the daemon said"
    );
    assert!(
        from_daemon >= btc,
        "{from_daemon} BTCUSDT trades counted, {btc} replayed"
    );
    let targets = get_json(&format!("{base}/api/v1/targets")).await;
    assert_eq!(
        targets["data"]["activeTargets"][0]["health"], "up",
        "{targets}"
    );

    // 4. The alert rules are loaded, and once evaluated against the live data none is broken.
    let alerts = alert_names();
    let rules: Vec<serde_json::Value> = eventually(
        "every alert rule evaluated",
        Duration::from_secs(60),
        || async {
            let v = get_json(&format!("{base}/api/v1/rules?type=alert")).await;
            let rules: Vec<serde_json::Value> = v["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let evaluated = rules.len() == alerts.len()
                && rules.iter().all(|r| {
                    !r["lastEvaluation"]
                        .as_str()
                        .unwrap_or("0001")
                        .starts_with("0001")
                });
            evaluated.then_some(rules)
        },
    )
    .await;
    for r in &rules {
        assert_eq!(
            r["health"], "ok",
            "rule {} failed: {}",
            r["name"], r["lastError"]
        );
    }

    // 5. Every panel query (variables set to "all") runs in Prometheus without error.
    for p in &panels {
        for expr in &p.exprs {
            let q = as_query(expr);
            let url = format!(
                "{base}/api/v1/query?query={}",
                url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            );
            let v = get_json(&url).await;
            assert_eq!(
                v["status"], "success",
                "{} / {}: {q}: {v}",
                p.dashboard, p.title
            );
        }
    }

    assert!(
        daemon.terminate(Duration::from_secs(30)).success(),
        "SIGTERM exits 0"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml (not run here: no Docker engine; its wiring to the repository is checked).

#[test]
fn compose_stack_mounts_existing_files_and_runs_tradepipe_on_mongodb() {
    let compose = std::fs::read_to_string(repo("docker-compose.yml")).unwrap();
    for service in [
        "postgres:",
        "mongodb:",
        "redis:",
        "replay:",
        "tradepipe:",
        "news-server:",
        "prometheus:",
        "grafana:",
    ] {
        assert!(
            compose.contains(&format!("\n  {service}\n")),
            "no service {service}"
        );
    }
    for image in ["image: postgres:15", "image: mongo:7", "image: redis:7"] {
        assert!(compose.contains(image), "{image}");
    }
    assert!(compose.contains("TRADEPIPE_DOCUMENT_STORE: mongodb"));
    assert!(compose.contains("TRADEPIPE_MONGODB_URL: mongodb://mongodb:27017"));
    // Every file or directory mounted from the repository exists.
    let mount = Regex::new(r"- \./([^:]+):").unwrap();
    let mounts: Vec<String> = mount
        .captures_iter(&compose)
        .map(|c| c[1].to_string())
        .collect();
    assert!(mounts.len() >= 5, "{mounts:?}");
    for m in &mounts {
        assert!(
            repo(m).exists(),
            "docker-compose.yml mounts ./{m}, which does not exist"
        );
    }
    // The alert rules select job="tradepipe": that is the scrape job's name.
    let prometheus = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml")).unwrap();
    assert!(prometheus.contains("job_name: tradepipe"));
    assert!(prometheus.contains("/etc/prometheus/alerts.yml"));
    // The Dockerfile runs the daemon unprivileged.
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    assert!(dockerfile.contains("\nUSER tradepipe\n"));
}
