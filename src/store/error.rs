//! The one error type of every store. Callers decide on two questions only, so those are what the
//! type answers: may the same call succeed later ([`StoreError::is_retryable`]), and was it the
//! request (bad data, unknown id) rather than the backend. The driver's error stays attached as
//! the `source`, so nothing is lost to a string. No variant ever contains a password: URLs are
//! redacted before they are put into an error, and connection errors that could quote the URL
//! keep only their scrubbed message.

/// The driver error under a [`StoreError`], by backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    /// Shown by its kind only: the full display adds the raw server response, which can be large
    /// and says nothing more to an operator (it stays reachable through `source()`).
    #[error("{}", .0.kind)]
    Mongo(#[source] mongodb::error::Error),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

impl From<mongodb::error::Error> for BackendError {
    fn from(e: mongodb::error::Error) -> Self {
        BackendError::Mongo(e)
    }
}

impl BackendError {
    fn name(&self) -> &'static str {
        match self {
            BackendError::Postgres(_) => "PostgreSQL",
            BackendError::Mongo(_) => "MongoDB",
            BackendError::Redis(_) => "Redis",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection refused or lost, pool exhausted, server shutting down, too many connections,
    /// serialization failure, deadlock, lock timeout: the same call may succeed later.
    #[error("{} unavailable while {context}: {source}", .source.name())]
    Unavailable {
        context: String,
        #[source]
        source: BackendError,
    },
    /// The backend answered with an error that a retry will not fix.
    #[error("{} error while {context}: {source}", .source.name())]
    Backend {
        context: String,
        #[source]
        source: BackendError,
    },
    /// The backend refused the data (a constraint or a value out of the column's range).
    #[error("{} refused the data while {context}: {source}", .source.name())]
    Rejected {
        context: String,
        #[source]
        source: BackendError,
    },
    /// Connecting failed. Only the driver's message is kept, with the URL's password removed:
    /// the driver error itself may quote the URL.
    #[error("{backend} unreachable while {context}: {message}")]
    Connect {
        backend: &'static str,
        context: String,
        message: String,
        retryable: bool,
    },
    /// What is stored cannot be read back (a value out of range, an unknown status, a schema that
    /// was not migrated).
    #[error("stored data unreadable while {context}: {message}")]
    Corrupt { context: String, message: String },
    #[error("unknown {what}: {key}")]
    NotFound { what: &'static str, key: String },
    /// A request the contract refuses before anything is written.
    #[error("{0}")]
    Invalid(String),
    /// Market data for symbols missing from `trading.symbols`; upsert them first.
    #[error("unknown symbol(s) {symbols:?}: not in trading.symbols (upsert_symbols first)")]
    UnknownSymbols { symbols: Vec<String> },
    /// The database URL could not be parsed (the message never contains the password).
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("migrating the database schema failed: {source}")]
    Migrate {
        /// The migration failed on a connection-level error (see [`StoreError::Unavailable`]).
        retryable: bool,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The backend cannot do this (a table without the columns retention needs, archiving from
    /// MongoDB, a backend missing from this setup).
    #[error("{0}")]
    Unsupported(String),
}

impl StoreError {
    /// True when the failure is about reaching the backend, not about the request: the caller
    /// should keep the data (spool it, leave the page claimed) and try again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Connect { retryable, .. } => *retryable,
            StoreError::Migrate { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A driver error: [`StoreError::Unavailable`] when the backend says a retry may succeed,
    /// else [`StoreError::Backend`].
    pub(crate) fn from_driver(
        context: impl Into<String>,
        source: impl Into<BackendError>,
        retryable: bool,
    ) -> Self {
        let (context, source) = (context.into(), source.into());
        if retryable {
            StoreError::Unavailable { context, source }
        } else {
            StoreError::Backend { context, source }
        }
    }

    pub(crate) fn not_found(what: &'static str, key: &str) -> Self {
        StoreError::NotFound {
            what,
            key: key.to_string(),
        }
    }

    pub(crate) fn corrupt(context: &str, message: impl Into<String>) -> Self {
        StoreError::Corrupt {
            context: context.to_string(),
            message: message.into(),
        }
    }

    /// The driver error underneath, when there is one.
    pub fn backend(&self) -> Option<&BackendError> {
        match self {
            StoreError::Unavailable { source, .. }
            | StoreError::Backend { source, .. }
            | StoreError::Rejected { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The PostgreSQL error underneath, when there is one.
    pub(crate) fn sqlx(&self) -> Option<&sqlx::Error> {
        match self.backend() {
            Some(BackendError::Postgres(e)) => Some(e),
            _ => None,
        }
    }
}
