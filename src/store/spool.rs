//! The local on-disk spool: where market batches go when PostgreSQL is down and the writer's
//! in-memory bound is exceeded, so an outage costs disk space instead of data.
//!
//! Layout: append-only segment files `<dir>/<seq:020>.spool`, one JSON-encoded [`MarketBatch`] per
//! line, each append fsync'd before it returns. Segments rotate by size and are drained oldest
//! first; a segment is deleted only after its batches were written (`remove`). Replaying a batch
//! twice is harmless because the store's writes are idempotent.
//!
//! Crash safety (`kill -9`, power loss): a record is complete only if it ends with `\n`, and JSON
//! cannot be cut short and still parse, so a torn last line is detected on [`Spool::open`],
//! counted, logged and cut off. Segments from an earlier run are never appended to; a new run
//! starts a new segment, so garbage can only ever be at the end of a file. Lines that still fail
//! to parse when read are counted and skipped, never a panic.
//!
//! All I/O is blocking and fsyncs take milliseconds: an async caller goes through
//! [`SpoolThread`](super::spool_thread::SpoolThread), which runs it on a thread of its own.

use crate::domain::MarketBatch;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Default rotation size. Small enough that `oldest` can hold a whole segment in memory, large
/// enough that fsyncing a directory per segment is rare.
pub(crate) const DEFAULT_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

const SEGMENT_EXT: &str = "spool";
const TMP_EXT: &str = "tmp";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O failed while {context} ({}): {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode a market batch for the spool: {0}")]
    Encode(#[from] serde_json::Error),
    /// The spool's thread is gone (it panicked): nothing more can be written to the spool.
    #[error("the spool thread has stopped")]
    Stopped,
}

fn io_err(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SpoolError + use<> {
    let path = path.to_path_buf();
    move |source| SpoolError::Io {
        context,
        path,
        source,
    }
}

/// The batches of one segment, read by [`Spool::oldest`]; hand it back to [`Spool::remove`] once
/// they are stored.
#[derive(Debug)]
pub struct SpoolSegment {
    seq: u64,
    /// Bytes of the file this read covered: appends after the read are kept by `remove`.
    end_offset: u64,
    /// The segment's batches in append order.
    pub batches: Vec<MarketBatch>,
    /// Lines that did not parse (corruption) and were skipped.
    pub dropped_records: u64,
}

impl SpoolSegment {
    /// The segment's sequence number (its file name); increases with append order.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

#[derive(Debug, Clone, Copy)]
struct SegmentMeta {
    batches: u64,
    bytes: u64,
}

struct Active {
    seq: u64,
    file: File,
    len: u64,
}

/// See the module documentation.
pub struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    segments: BTreeMap<u64, SegmentMeta>,
    /// The segment appends go to; `None` until the first append (and after a failed write, so
    /// nothing is ever appended behind a partial record).
    active: Option<Active>,
    next_seq: u64,
    torn_records: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("depth_batches", &self.depth_batches())
            .field("depth_bytes", &self.depth_bytes())
            .finish()
    }
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` with the default segment size.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        Spool::open_with_segment_bytes(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// Opens the spool, finding the segments of earlier runs in order and cutting off a torn last
    /// line. `segment_bytes` is the size after which appends go to a new segment.
    pub fn open_with_segment_bytes(dir: &Path, segment_bytes: u64) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err("creating the spool directory", dir))?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("listing the spool directory", dir))? {
            let path = entry
                .map_err(io_err("listing the spool directory", dir))?
                .path();
            let ext = path.extension().and_then(|e| e.to_str());
            let stem = path.file_stem().and_then(|s| s.to_str());
            match (ext, stem) {
                // Leftover of a `remove` interrupted before its rename: the source is intact.
                (Some(TMP_EXT), _) => {
                    tracing::warn!(path = %path.display(), "removing an unfinished spool file");
                    fs::remove_file(&path).map_err(io_err("removing a temporary file", &path))?;
                }
                (Some(SEGMENT_EXT), Some(stem)) => match stem.parse::<u64>() {
                    Ok(seq) => found.push((seq, path)),
                    Err(_) => tracing::warn!(path = %path.display(), "ignoring a foreign file"),
                },
                _ => {}
            }
        }
        found.sort_unstable_by_key(|(seq, _)| *seq);

        let mut spool = Spool {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            segments: BTreeMap::new(),
            active: None,
            next_seq: found.last().map_or(1, |(seq, _)| seq + 1),
            torn_records: 0,
        };
        for (seq, path) in found {
            let meta = spool.recover_segment(&path)?;
            if meta.batches == 0 {
                fs::remove_file(&path).map_err(io_err("removing an empty segment", &path))?;
                continue;
            }
            spool.segments.insert(seq, meta);
        }
        spool.sync_dir()?;
        Ok(spool)
    }

    /// Counts a segment's records and cuts off a torn tail (bytes after the last newline).
    fn recover_segment(&mut self, path: &Path) -> Result<SegmentMeta, SpoolError> {
        let data = fs::read(path).map_err(io_err("reading a segment", path))?;
        let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < data.len() {
            self.torn_records += 1;
            tracing::warn!(
                path = %path.display(),
                torn_bytes = data.len() - complete,
                "dropping a torn record at the end of a spool segment (interrupted write)"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err("opening a segment to cut a torn record", path))?;
            file.set_len(complete as u64)
                .map_err(io_err("cutting a torn record", path))?;
            file.sync_all()
                .map_err(io_err("syncing a repaired segment", path))?;
        }
        let batches = data[..complete].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(SegmentMeta {
            batches,
            bytes: complete as u64,
        })
    }

    /// Appends one batch durably: when this returns Ok the batch survives a crash.
    pub fn append(&mut self, batch: &MarketBatch) -> Result<(), SpoolError> {
        let mut line = serde_json::to_vec(batch)?;
        line.push(b'\n');
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.len > 0 && a.len + line.len() as u64 > self.segment_bytes)
        {
            self.active = None;
        }
        let mut active = match self.active.take() {
            Some(active) => active,
            None => self.new_segment()?,
        };
        let path = self.segment_path(active.seq);
        let written = active
            .file
            .write_all(&line)
            .and_then(|()| active.file.sync_data());
        if let Err(source) = written {
            // Cut a partial record off so the file stays clean, and stop appending to it either
            // way (`active` is dropped): the next append starts a fresh segment.
            if active.file.set_len(active.len).is_err() {
                tracing::warn!(path = %path.display(), "could not cut a failed spool write");
            }
            return Err(SpoolError::Io {
                context: "appending a batch",
                path,
                source,
            });
        }
        active.len += line.len() as u64;
        let meta = self.segments.entry(active.seq).or_insert(SegmentMeta {
            batches: 0,
            bytes: 0,
        });
        meta.batches += 1;
        meta.bytes = active.len;
        self.active = Some(active);
        Ok(())
    }

    fn new_segment(&mut self) -> Result<Active, SpoolError> {
        let seq = self.next_seq;
        let path = self.segment_path(seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err("creating a segment", &path))?;
        self.next_seq += 1;
        // The new name must be durable too, or a crash could lose the whole file.
        self.sync_dir()?;
        Ok(Active { seq, file, len: 0 })
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Batches waiting in the spool.
    pub fn depth_batches(&self) -> u64 {
        self.segments.values().map(|m| m.batches).sum()
    }

    /// Bytes of spooled batches on disk.
    pub fn depth_bytes(&self) -> u64 {
        self.segments.values().map(|m| m.bytes).sum()
    }

    /// Records dropped since `open` because they were torn or unreadable.
    pub fn torn_records(&self) -> u64 {
        self.torn_records
    }

    /// The batches of the oldest segment, in append order; `None` when the spool is empty.
    pub fn oldest(&self) -> Result<Option<SpoolSegment>, SpoolError> {
        let Some((&seq, meta)) = self.segments.iter().next() else {
            return Ok(None);
        };
        let path = self.segment_path(seq);
        let mut data = fs::read(&path).map_err(io_err("reading a segment", &path))?;
        // Only what is accounted for: the file may have grown if it is the active segment.
        data.truncate(meta.bytes as usize);
        let mut batches = Vec::with_capacity(meta.batches as usize);
        let mut dropped_records = 0;
        for (n, line) in data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            match serde_json::from_slice::<MarketBatch>(line) {
                Ok(batch) => batches.push(batch),
                Err(e) => {
                    dropped_records += 1;
                    tracing::error!(
                        path = %path.display(), record = n, error = %e,
                        "skipping an unreadable spool record"
                    );
                }
            }
        }
        Ok(Some(SpoolSegment {
            seq,
            end_offset: meta.bytes,
            batches,
            dropped_records,
        }))
    }

    /// Deletes a segment whose batches were stored. If it is the segment still being appended to
    /// and grew since it was read, the newer batches are first moved to a new segment (written to
    /// a temporary file and renamed, so a crash leaves either the old or both files: at worst a
    /// batch is replayed twice, which the store ignores).
    pub fn remove(&mut self, segment: SpoolSegment) -> Result<(), SpoolError> {
        let Some(meta) = self.segments.get(&segment.seq).copied() else {
            return Ok(()); // already removed
        };
        let path = self.segment_path(segment.seq);
        if self.active.as_ref().is_some_and(|a| a.seq == segment.seq) {
            self.active = None;
        }
        if meta.bytes > segment.end_offset {
            let data = fs::read(&path).map_err(io_err("reading a segment", &path))?;
            let end = (meta.bytes as usize).min(data.len());
            let tail = data.get(segment.end_offset as usize..end).unwrap_or(&[]);
            let moved_batches = meta
                .batches
                .saturating_sub(segment.batches.len() as u64 + segment.dropped_records);
            let seq = self.next_seq;
            self.next_seq += 1;
            let final_path = self.segment_path(seq);
            let tmp_path = final_path.with_extension(TMP_EXT);
            let mut tmp =
                File::create(&tmp_path).map_err(io_err("creating a segment", &tmp_path))?;
            tmp.write_all(tail)
                .and_then(|()| tmp.sync_all())
                .map_err(io_err("writing a segment", &tmp_path))?;
            fs::rename(&tmp_path, &final_path)
                .map_err(io_err("renaming a segment", &final_path))?;
            self.sync_dir()?;
            self.segments.insert(
                seq,
                SegmentMeta {
                    batches: moved_batches,
                    bytes: tail.len() as u64,
                },
            );
        }
        fs::remove_file(&path).map_err(io_err("removing a segment", &path))?;
        self.segments.remove(&segment.seq);
        self.torn_records += segment.dropped_records;
        self.sync_dir()
    }

    /// Writes a batch the database refused to `<dir>/rejected/<time>.json` with the error, so an
    /// operator can inspect and replay it; it is never silently dropped. Returns the file's path.
    pub(crate) fn keep_rejected(
        &self,
        batch: &MarketBatch,
        error: &str,
    ) -> Result<PathBuf, SpoolError> {
        let dir = self.dir.join("rejected");
        fs::create_dir_all(&dir).map_err(io_err("creating the rejected directory", &dir))?;
        let name = format!("{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
        let body = serde_json::to_vec(&serde_json::json!({ "error": error, "batch": batch }))?;
        let tmp = dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, body).map_err(io_err("writing a rejected batch", &tmp))?;
        let path = dir.join(name);
        fs::rename(&tmp, &path).map_err(io_err("renaming a rejected batch", &path))?;
        Ok(path)
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{SEGMENT_EXT}"))
    }

    /// Makes file creations, renames and deletions durable.
    fn sync_dir(&self) -> Result<(), SpoolError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing the spool directory", &self.dir))
    }
}
