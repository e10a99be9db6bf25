//! MongoDB: the document and analysis store (the seed's Phase 2) and its retention. This file
//! holds what they share: how a driver error becomes a [`StoreError`] (retryable or not, the
//! password scrubbed), [`Call`] (the shell every call about one document repeats), the lease
//! claim, and BSON dates.

mod analysis;
mod documents;
mod retention;

pub use documents::{MongoDocumentStore, RAW_ARTICLE_TTL};
pub use retention::MongoRetentionStore;

use crate::store::StoreError;
use chrono::{DateTime, Utc};
use mongodb::Collection;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ReturnDocument;
use serde::Serialize;

// ---------------------------------------------------------------------------------------------
// Errors

/// Server codes that mean "not now" (from the driver specifications' retryable-error lists:
/// host unreachable/not found, network timeout, shutdown in progress, primary stepped down,
/// exceeded time limit, socket exception, not writable primary, interrupted at shutdown or by a
/// replica-set state change, not primary, read concern majority not yet available, write
/// conflict).
const RETRYABLE_CODES: &[i32] = &[
    6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 112,
];

fn is_retryable_mongo(e: &mongodb::error::Error) -> bool {
    if e.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
        || e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
        || e.contains_label("RetryableError")
    {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::DnsResolve { .. } => true,
        ErrorKind::Command(c) => RETRYABLE_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => RETRYABLE_CODES.contains(&w.code),
        _ => false,
    }
}

/// Classifies a driver error: [`StoreError::Unavailable`] when a retry may succeed, else
/// [`StoreError::Backend`]; the error is kept as the source (shown by its kind only).
fn mongo_err(context: &str, e: mongodb::error::Error) -> StoreError {
    let retryable = is_retryable_mongo(&e);
    StoreError::from_driver(context, e, retryable)
}

/// An error of connecting with `url`: the driver's messages do not normally quote the URL, but
/// the password is removed from the message to make sure of it, and the driver error itself
/// (which could hold the URL) is not kept.
fn connect_err(context: &str, e: mongodb::error::Error, url: &str) -> StoreError {
    StoreError::Connect {
        backend: "MongoDB",
        context: scrub_password(context.to_string(), url),
        message: scrub_password(e.kind.to_string(), url),
        retryable: is_retryable_mongo(&e),
    }
}

/// `text` without the password of `url`, plain or percent-decoded.
fn scrub_password(text: String, url: &str) -> String {
    let Some(password) = url_password(url) else {
        return text;
    };
    let mut text = text;
    for p in [password.clone(), percent_decode(&password)] {
        if !p.is_empty() {
            text = text.replace(&p, "***");
        }
    }
    text
}

/// The password of `mongodb://user:password@host1,host2/...` (by hand: `url::Url` does not parse
/// multi-host connection strings).
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_string())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Claims up to `limit` documents matching `filter`, oldest `crawled_at` first, one atomic
/// `find_one_and_update` each (so two claimers never take the same one), returning them as
/// updated.
async fn claim_oldest<T>(
    coll: &Collection<T>,
    filter: Document,
    update: Document,
    limit: usize,
    context: &str,
) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + Send + Sync,
{
    let mut claimed = Vec::new();
    while claimed.len() < limit {
        let next = coll
            .find_one_and_update(filter.clone(), update.clone())
            .sort(doc! { "crawled_at": 1, "_id": 1 })
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| mongo_err(context, e))?;
        match next {
            Some(doc) => claimed.push(doc),
            None => break,
        }
    }
    Ok(claimed)
}

/// The `n` of a `{"$group": {"_id": ..., "n": {"$sum": 1}}}` result.
fn count_of(g: &Document, ctx: &str) -> Result<u64, StoreError> {
    match g.get("n") {
        Some(Bson::Int32(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
        Some(Bson::Int64(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
        other => Err(StoreError::corrupt(
            ctx,
            format!("unexpected count {other:?}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire documents

fn to_bson_date(t: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(t.timestamp_millis())
}

fn from_bson_date(d: bson::DateTime) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(d.timestamp_millis()).ok_or_else(|| {
        StoreError::corrupt(
            "reading a date",
            format!("{} ms is out of range", d.timestamp_millis()),
        )
    })
}

fn parse_id(id: &str) -> Option<ObjectId> {
    ObjectId::parse_str(id).ok()
}

fn to_bson_value<T: Serialize>(what: &str, value: &T) -> Result<Bson, StoreError> {
    bson::to_bson(value).map_err(|e| StoreError::Invalid(format!("serializing {what}: {e}")))
}

/// The shell of a call about one stored document: its id parsed (not an ObjectId: not found,
/// without a round trip), one context for every error of the call, and not-found said the same
/// way.
struct Call<'a> {
    what: &'static str,
    id: &'a str,
    oid: ObjectId,
    context: String,
}

impl<'a> Call<'a> {
    /// A call on the document `id` of kind `what`; `doing` says what the call does, for errors.
    /// Fails with [`StoreError::NotFound`] when `id` cannot name a document.
    fn on(what: &'static str, id: &'a str, doing: &str) -> Result<Self, StoreError> {
        let oid = parse_id(id).ok_or_else(|| StoreError::not_found(what, id))?;
        Ok(Call {
            what,
            id,
            oid,
            context: format!("{doing} {what} {id}"),
        })
    }

    /// Like [`Call::on`] for a read, where an id that cannot name a document finds nothing.
    fn read(what: &'static str, id: &'a str) -> Option<Self> {
        Call::on(what, id, "reading").ok()
    }

    /// Maps a driver error of this call.
    fn err(&self) -> impl Fn(mongodb::error::Error) -> StoreError + '_ {
        |e| mongo_err(&self.context, e)
    }

    fn not_found(&self) -> StoreError {
        StoreError::not_found(self.what, self.id)
    }

    /// Not found unless the document is in `coll`.
    async fn exists<T: Send + Sync>(&self, coll: &Collection<T>) -> Result<(), StoreError> {
        let found = coll
            .clone_with_type::<Document>()
            .find_one(doc! { "_id": self.oid })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(self.err())?;
        found.map(drop).ok_or_else(|| self.not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_found_and_scrubbed() {
        let url = "mongodb://app:s3cr%2Ft@h1:27017,h2:27017/db?replicaSet=rs0";
        assert_eq!(url_password(url).as_deref(), Some("s3cr%2Ft"));
        let text = scrub_password("auth failed for app:s3cr/t and s3cr%2Ft".into(), url);
        assert!(!text.contains("s3cr"), "{text}");
        assert_eq!(url_password("mongodb://h1:27017/db"), None);
        assert_eq!(url_password("mongodb://user@h1/db"), None);
    }
}
