//! Archive files: gzip JSON lines, one file per policy, table and UTC day, and a MANIFEST.json
//! per policy with each file's row count and SHA-256 checksums. Both are written to a temporary
//! name, fsync'd and renamed (then the directory fsync'd), so a reader or a crash never sees half
//! a file, and a file is in the manifest only once it is complete on disk.
//!
//! Layout: `{dir}/{policy}/{YYYY}/{table}-{policy}-{YYYY-MM-DD}[-partN].jsonl.gz` and
//! `{dir}/{policy}/MANIFEST.json`. A second part of a day exists only when a pass failed after
//! archiving and before deleting everything, and rows were added or changed meanwhile.

use super::RetentionError;
use chrono::{DateTime, NaiveDate, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "MANIFEST.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub policy: String,
    pub files: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative to the policy's directory.
    pub file: String,
    pub table: String,
    /// The UTC day the rows' time falls in.
    pub day: NaiveDate,
    pub part: u32,
    pub rows: u64,
    /// Of the file as stored (compressed).
    pub sha256: String,
    /// Of the uncompressed JSON lines.
    pub content_sha256: String,
    pub bytes: u64,
    pub created_at: DateTime<Utc>,
    pub format: String,
}

/// The archive directory.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
}

/// One day's file being written (under a temporary name until [`Archive::commit`]).
pub struct PeriodWriter {
    tmp: PathBuf,
    entry: ManifestEntry,
    out: GzEncoder<HashingWriter<BufWriter<File>>>,
    content: Sha256,
}

impl PeriodWriter {
    pub(crate) fn write_line(&mut self, json: &str) -> Result<(), RetentionError> {
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json.as_bytes());
        line.push(b'\n');
        self.content.update(&line);
        self.entry.rows += 1;
        self.out
            .write_all(&line)
            .map_err(|e| RetentionError::io(&self.tmp, e))
    }

    pub fn rows(&self) -> u64 {
        self.entry.rows
    }
}

/// Counts and hashes the compressed bytes on their way to the file.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of an archive line: rows already archived (same content) are recognised by it.
pub(crate) fn line_hash(json: &str) -> [u8; 32] {
    Sha256::digest(json.as_bytes()).into()
}

impl Archive {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Archive { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn policy_dir(&self, policy: &str) -> PathBuf {
        self.dir.join(policy)
    }

    pub fn manifest_path(&self, policy: &str) -> PathBuf {
        self.policy_dir(policy).join(MANIFEST)
    }

    pub fn manifest(&self, policy: &str) -> Result<Manifest, RetentionError> {
        let path = self.manifest_path(policy);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RetentionError::Manifest {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest {
                policy: policy.to_string(),
                files: Vec::new(),
            }),
            Err(e) => Err(RetentionError::io(&path, e)),
        }
    }

    /// Removes temporary files a crashed pass left behind (never a committed file).
    pub(crate) fn remove_temporaries(&self, policy: &str) -> Result<(), RetentionError> {
        let root = self.policy_dir(policy);
        let Ok(years) = fs::read_dir(&root) else {
            return Ok(());
        };
        for year in years.flatten() {
            let Ok(files) = fs::read_dir(year.path()) else {
                continue;
            };
            for f in files.flatten() {
                if f.file_name().to_string_lossy().ends_with(".tmp") {
                    fs::remove_file(f.path()).map_err(|e| RetentionError::io(&f.path(), e))?;
                }
            }
        }
        Ok(())
    }

    /// Hashes of every line already archived for `day` (by earlier, interrupted passes), after
    /// checking each file against its manifest checksum.
    pub(crate) fn archived_lines(
        &self,
        manifest: &Manifest,
        day: NaiveDate,
    ) -> Result<HashSet<[u8; 32]>, RetentionError> {
        let mut out = HashSet::new();
        for entry in manifest.files.iter().filter(|e| e.day == day) {
            for line in self.read_verified(&manifest.policy, entry)? {
                out.insert(line_hash(&line));
            }
        }
        Ok(out)
    }

    /// Reads a file back, checking its checksums and row count against the manifest entry.
    pub fn read_verified(
        &self,
        policy: &str,
        entry: &ManifestEntry,
    ) -> Result<Vec<String>, RetentionError> {
        let path = self.policy_dir(policy).join(&entry.file);
        let bytes = fs::read(&path).map_err(|e| RetentionError::io(&path, e))?;
        let bad = |message: String| RetentionError::Manifest {
            path: path.display().to_string(),
            message,
        };
        if hex(&Sha256::digest(&bytes)) != entry.sha256 {
            return Err(bad("file checksum does not match the manifest".into()));
        }
        let mut content = Sha256::new();
        let mut lines = Vec::new();
        for line in BufReader::new(GzDecoder::new(bytes.as_slice())).lines() {
            let line = line.map_err(|e| RetentionError::io(&path, e))?;
            content.update(line.as_bytes());
            content.update(b"\n");
            lines.push(line);
        }
        if hex(&content.finalize()) != entry.content_sha256 {
            return Err(bad("content checksum does not match the manifest".into()));
        }
        if lines.len() as u64 != entry.rows {
            return Err(bad(format!(
                "{} rows, the manifest says {}",
                lines.len(),
                entry.rows
            )));
        }
        Ok(lines)
    }

    /// Starts the next file for (`policy`, `table`, `day`) under a temporary name.
    pub fn begin(
        &self,
        manifest: &Manifest,
        table: &str,
        day: NaiveDate,
    ) -> Result<PeriodWriter, RetentionError> {
        let policy = &manifest.policy;
        let year_dir = self.policy_dir(policy).join(day.format("%Y").to_string());
        private_dir(&year_dir).map_err(|e| RetentionError::io(&year_dir, e))?;
        // The next part number not used by the manifest nor by a file on disk (a file renamed
        // into place just before a crash, whose manifest entry was never written).
        let mut part = manifest.files.iter().filter(|e| e.day == day).count() as u32 + 1;
        let name = |part: u32| {
            let suffix = if part == 1 {
                String::new()
            } else {
                format!("-part{part}")
            };
            format!("{table}-{policy}-{day}{suffix}.jsonl.gz")
        };
        while year_dir.join(name(part)).exists() {
            tracing::warn!(file = %year_dir.join(name(part)).display(), "archive file not in the manifest (interrupted pass); kept, next part used");
            part += 1;
        }
        let file = name(part);
        let tmp = year_dir.join(format!(".{file}.tmp"));
        let f = private_file(&tmp).map_err(|e| RetentionError::io(&tmp, e))?;
        let out = GzEncoder::new(
            HashingWriter {
                inner: BufWriter::new(f),
                hash: Sha256::new(),
                bytes: 0,
            },
            Compression::default(),
        );
        Ok(PeriodWriter {
            tmp,
            entry: ManifestEntry {
                file: format!("{}/{file}", day.format("%Y")),
                table: table.to_string(),
                day,
                part,
                rows: 0,
                sha256: String::new(),
                content_sha256: String::new(),
                bytes: 0,
                created_at: Utc::now(),
                format: "jsonl+gzip".into(),
            },
            out,
            content: Sha256::new(),
        })
    }

    /// Completes the file durably, then records it in the manifest (atomically replaced). Only
    /// after this returns may the archived rows be deleted.
    pub fn commit(
        &self,
        manifest: &mut Manifest,
        w: PeriodWriter,
    ) -> Result<ManifestEntry, RetentionError> {
        let PeriodWriter {
            tmp,
            mut entry,
            out,
            content,
        } = w;
        let hashing = out.finish().map_err(|e| RetentionError::io(&tmp, e))?;
        let HashingWriter { inner, hash, bytes } = hashing;
        let file = inner
            .into_inner()
            .map_err(|e| RetentionError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| RetentionError::io(&tmp, e))?;
        drop(file);
        entry.sha256 = hex(&hash.finalize());
        entry.content_sha256 = hex(&content.finalize());
        entry.bytes = bytes;
        let dest = self.policy_dir(&manifest.policy).join(&entry.file);
        fs::rename(&tmp, &dest).map_err(|e| RetentionError::io(&dest, e))?;
        sync_parent(&dest)?;
        manifest.files.push(entry.clone());
        if let Err(e) = self.write_manifest(manifest) {
            manifest.files.pop();
            return Err(e);
        }
        Ok(entry)
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), RetentionError> {
        let path = self.manifest_path(&manifest.policy);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| RetentionError::Manifest {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut f = private_file(&tmp).map_err(|e| RetentionError::io(&tmp, e))?;
        f.write_all(&json)
            .map_err(|e| RetentionError::io(&tmp, e))?;
        f.sync_all().map_err(|e| RetentionError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| RetentionError::io(&path, e))?;
        sync_parent(&path)
    }
}

/// One day of one policy's table being archived: the manifest, the lines earlier (interrupted)
/// passes archived, and the file being written. Every method does blocking file I/O (reads,
/// gzip, fsync): an async caller runs them on the blocking pool and moves this value in and out.
pub(crate) struct DayArchive {
    archive: Archive,
    manifest: Manifest,
    already: HashSet<[u8; 32]>,
    table: &'static str,
    day: NaiveDate,
    writer: Option<PeriodWriter>,
}

impl DayArchive {
    /// Reads the policy's manifest and the lines already archived for `day`, verified.
    pub fn open(
        archive: Archive,
        policy: &str,
        table: &'static str,
        day: NaiveDate,
    ) -> Result<DayArchive, RetentionError> {
        let manifest = archive.manifest(policy)?;
        let already = archive.archived_lines(&manifest, day)?;
        Ok(DayArchive {
            archive,
            manifest,
            already,
            table,
            day,
            writer: None,
        })
    }

    /// Appends the lines not archived before (same content) to the day's file, starting it on
    /// the first one.
    pub fn write(&mut self, lines: &[String]) -> Result<(), RetentionError> {
        for line in lines {
            if self.already.contains(&line_hash(line)) {
                continue;
            }
            let w = match &mut self.writer {
                Some(w) => w,
                None => {
                    self.writer
                        .insert(self.archive.begin(&self.manifest, self.table, self.day)?)
                }
            };
            w.write_line(line)?;
        }
        Ok(())
    }

    /// Commits the file (see [`Archive::commit`]); None when every line was archived before.
    pub fn commit(mut self) -> Result<Option<ManifestEntry>, RetentionError> {
        match self.writer.take() {
            Some(w) => self.archive.commit(&mut self.manifest, w).map(Some),
            None => Ok(None),
        }
    }
}

/// A rename is durable only once its directory is.
fn sync_parent(path: &Path) -> Result<(), RetentionError> {
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| RetentionError::io(dir, e))?;
    }
    Ok(())
}

/// Archives hold every archived row (users' sessions among them): readable by the service's
/// group at most, whatever umask the daemon or `tradepipe retention` was started with.
const ARCHIVE_FILE_MODE: u32 = 0o640;
const ARCHIVE_DIR_MODE: u32 = 0o750;

fn private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(ARCHIVE_FILE_MODE)
        .open(path)
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(ARCHIVE_DIR_MODE)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tp-archive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn committed_file_reads_back_with_matching_manifest() {
        let dir = tmpdir("roundtrip");
        let a = Archive::new(&dir);
        let mut m = a.manifest("p").unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let mut w = a.begin(&m, "s.t", day).unwrap();
        w.write_line(r#"{"a":1}"#).unwrap();
        w.write_line(r#"{"a":2.50000000}"#).unwrap();
        let e = a.commit(&mut m, w).unwrap();
        assert_eq!(e.rows, 2);
        let m2 = a.manifest("p").unwrap();
        assert_eq!(m2, m);
        let lines = a.read_verified("p", &m2.files[0]).unwrap();
        assert_eq!(lines, vec![r#"{"a":1}"#, r#"{"a":2.50000000}"#]);
        // A second file of the same day is a new part, never an overwrite.
        let w = a.begin(&m, "s.t", day).unwrap();
        assert_eq!(w.entry.part, 2);
        drop(w);
        a.remove_temporaries("p").unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupted_file_is_refused() {
        let dir = tmpdir("corrupt");
        let a = Archive::new(&dir);
        let mut m = a.manifest("p").unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let mut w = a.begin(&m, "s.t", day).unwrap();
        w.write_line("{}").unwrap();
        let e = a.commit(&mut m, w).unwrap();
        let path = dir.join("p").join(&e.file);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        assert!(a.read_verified("p", &e).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
