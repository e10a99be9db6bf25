//! Storage behind small traits: PostgreSQL, Redis and the local on-disk spool.
