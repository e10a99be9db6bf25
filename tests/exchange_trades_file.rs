//! Trade-file readers against the real recorded data and small generated edge cases.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tradepipe::exchange::trades_file::{TradesFileError, read_trades_file, read_ws_recording};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/market/hftbacktest_ws_spot"
);
const BTC_DERIVED: &str = "BTCUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tradepipe-exch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
}

#[test]
fn derived_csv_gz_equals_the_recordings() {
    let from_csv = read_trades_file(&Path::new(DATA).join(BTC_DERIVED), None).unwrap();
    assert_eq!(from_csv.len(), 19_904);
    let mut from_ws = read_ws_recording(&Path::new(DATA).join("btcusdt_20240808.gz")).unwrap();
    assert_eq!(from_ws.len(), 9_757);
    from_ws.extend(read_ws_recording(&Path::new(DATA).join("btcusdt_20240809.gz")).unwrap());
    assert_eq!(from_csv, from_ws);
    assert!(
        from_csv
            .windows(2)
            .all(|w| w[1].trade_id == w[0].trade_id + 1)
    );
    assert_eq!(&*from_csv[0].symbol, "BTCUSDT");
    assert_eq!(from_csv[0].trade_id, 3_735_683_259);
    assert_eq!(from_csv[0].time_ms, 1_723_161_255_342);
    assert_eq!(from_csv[0].price.to_string(), "61837.63000000");

    let eth = read_trades_file(
        &Path::new(DATA).join("ETHUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz"),
        None,
    )
    .unwrap();
    assert_eq!(eth.len(), 14_515);
    assert_eq!(&*eth[0].symbol, "ETHUSDT");
}

#[test]
fn header_file_with_other_column_order() {
    // The nautilus-derived file: header `id,price,qty,time,isBuyerMaker` (no quoteQty), prices
    // with 2 decimals, a lower-case Binance-style name.
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/market/nautilus_trades/btcusdt-trades-2021-01-08.derived.csv"
    ));
    let t = read_trades_file(p, None).unwrap();
    assert_eq!(t.len(), 2_001);
    assert_eq!(&*t[0].symbol, "BTCUSDT");
    assert_eq!(
        (t[0].trade_id, t[0].time_ms),
        (553_287_559, 1_610_064_000_278)
    );
    assert_eq!(
        t[0].price,
        rust_decimal::Decimal::from_str("39432.48").unwrap()
    );
    assert!(t[0].is_buyer_maker && !t[1].is_buyer_maker);
}

#[test]
fn zip_microseconds_and_lowercase_booleans() {
    let dir = temp_dir("zip");
    let zip_path = dir.join("BTCUSDT-trades-2025-01-01.zip");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    zw.start_file(
        "BTCUSDT-trades-2025-01-01.csv",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zw.write_all(
        b"id,price,quote_qty_is_ignored,qty,time,is_buyer_maker,is_best_match\n\
          1,93576.00000000,1,0.00007000,1735689600123456,true,true\n\
          2,93576.01000000,1,0.00100000,1735689600999999,false,true\n",
    )
    .unwrap();
    zw.finish().unwrap();
    let t = read_trades_file(&zip_path, None).unwrap();
    assert_eq!(t.len(), 2);
    // Header columns are found by name even out of Binance's usual order.
    assert_eq!(t[0].qty.to_string(), "0.00007000");
    assert_eq!(t[0].time_ms, 1_735_689_600_123);
    assert_eq!(t[1].time_ms, 1_735_689_600_999);
    assert!(t[0].is_buyer_maker && !t[1].is_buyer_maker);
}

#[test]
fn symbol_comes_from_name_then_argument() {
    let dir = temp_dir("sym");
    let p = dir.join("tape.csv");
    write(
        &p,
        "5,1.5,2,3,1723161255342,True,True\n6,1.6,2,3.2,1723161255343,False,True\n",
    );
    assert!(matches!(
        read_trades_file(&p, None),
        Err(TradesFileError::NoSymbol { .. })
    ));
    let t = read_trades_file(&p, Some("ethbtc")).unwrap();
    assert_eq!(&*t[1].symbol, "ETHBTC");
    let named = dir.join("ETHUSDT-trades-2024-08-08.csv");
    write(&named, "5,1.5,2,3,1723161255342,True,True\n");
    assert!(matches!(
        read_trades_file(&named, Some("BTCUSDT")),
        Err(TradesFileError::SymbolConflict { .. })
    ));
    assert_eq!(read_trades_file(&named, Some("ethusdt")).unwrap().len(), 1);
}

#[test]
fn malformed_lines_name_file_and_line() {
    let dir = temp_dir("bad");
    let good = "1,1.5,2,3,1723161255342,True,True\n";
    for (i, (second, want)) in [
        ("2,abc,2,3,1723161255343,True,True", "bad price"),
        ("2,1.5,2,3,1723161255343,Yes,True", "bad isBuyerMaker"),
        ("2,1.5,2,3,1723161255343,True", "expected 7 columns"),
        ("x2,1.5,2,3,1723161255343,True,True", "bad trade id"),
        ("1,1.5,2,3,1723161255343,True,True", "does not follow"),
        ("2,1.5,-2,3,1723161255343,True,True", "bad quantity"),
        ("2,1.5,2,3,,True,True", "bad time"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = dir.join(format!("BTCUSDT-trades-case{i}.csv"));
        write(&p, &format!("{good}{second}\n"));
        let err = read_trades_file(&p, None).unwrap_err().to_string();
        assert!(err.contains(&format!("case{i}.csv:2:")), "{err}");
        assert!(err.contains(want), "{err}");
    }
    let missing = dir.join("BTCUSDT-trades-missing.csv");
    assert!(matches!(
        read_trades_file(&missing, None),
        Err(TradesFileError::Io { .. })
    ));
    let not_zip = dir.join("BTCUSDT-trades-x.zip");
    write(&not_zip, "hello");
    assert!(matches!(
        read_trades_file(&not_zip, None),
        Err(TradesFileError::Zip { .. })
    ));
}

#[test]
fn gz_with_header_and_crlf() {
    let dir = temp_dir("gz");
    let p = dir.join("BTCUSDT-trades-2024-08-08.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(b"id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch\r\n7,2.5,1,2.5,1723161255342,False,True\r\n\r\n")
        .unwrap();
    gz.finish().unwrap();
    let t = read_trades_file(&p, None).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].trade_id, t[0].is_buyer_maker), (7, false));
}

#[test]
fn read_any_tells_recordings_from_csv_by_content() {
    use tradepipe::exchange::trades_file::read_any_trades;
    let rec = Path::new(DATA).join("ethusdt_20240809.gz");
    let any = read_any_trades(&rec, None).unwrap();
    assert_eq!(any.len(), 8_409);
    assert_eq!(any, read_ws_recording(&rec).unwrap());
    assert!(matches!(
        read_any_trades(&rec, Some("BTCUSDT")),
        Err(TradesFileError::SymbolConflict { .. })
    ));
    let csv = Path::new(DATA).join(BTC_DERIVED);
    assert_eq!(read_any_trades(&csv, None).unwrap().len(), 19_904);
}
