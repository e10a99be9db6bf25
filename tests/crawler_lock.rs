//! The per-source crawl lock against the real Redis (127.0.0.1:6379), one key prefix per test.

use std::time::Duration;
use tradepipe::config::RedisTarget;
use tradepipe::news::crawl::lock::CrawlLock;

const REDIS: &str = "redis://127.0.0.1:6379/0";

fn prefix(test: &str) -> String {
    format!("test:crawler_lock:{test}:{}:", std::process::id())
}

#[tokio::test]
async fn only_one_owner_gets_the_lock_and_only_the_owner_releases_it() {
    let lock = CrawlLock::connect(&RedisTarget::from_url(REDIS), &prefix("owners"))
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let a = lock.try_acquire("src", "owner-a", ttl).await.unwrap();
    let a = a.expect("first owner gets the lock");
    assert!(
        lock.try_acquire("src", "owner-b", ttl)
            .await
            .unwrap()
            .is_none()
    );
    // Another source is another lock.
    let other = lock.try_acquire("other", "owner-b", ttl).await.unwrap();
    assert!(other.is_some());

    // A non-owner's release does nothing.
    assert!(!lock.release_as("src", "owner-b").await.unwrap());
    assert_eq!(
        lock.holder("src").await.unwrap().as_deref(),
        Some("owner-a")
    );

    assert!(a.extend(ttl).await.unwrap());
    assert!(a.release().await.unwrap());
    assert_eq!(lock.holder("src").await.unwrap(), None);
    let b = lock.try_acquire("src", "owner-b", ttl).await.unwrap();
    assert!(b.is_some(), "free again after the owner released it");
    assert!(b.unwrap().release().await.unwrap());
    assert!(other.unwrap().release().await.unwrap());
}

#[tokio::test]
async fn the_lock_expires_and_a_stale_guard_cannot_touch_the_new_owner() {
    let lock = CrawlLock::connect(&RedisTarget::from_url(REDIS), &prefix("expiry"))
        .await
        .unwrap();
    let a = lock
        .try_acquire("src", "owner-a", Duration::from_secs(1))
        .await
        .unwrap()
        .expect("free");
    assert!(
        lock.try_acquire("src", "owner-b", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let b = lock
        .try_acquire("src", "owner-b", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("expired lock is free");
    // owner-a's guard outlived its lock: it must neither extend nor delete owner-b's.
    assert!(!a.extend(Duration::from_secs(30)).await.unwrap());
    assert!(!a.release().await.unwrap());
    assert_eq!(
        lock.holder("src").await.unwrap().as_deref(),
        Some("owner-b")
    );
    assert!(b.release().await.unwrap());
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let r = CrawlLock::connect(&RedisTarget::from_url("redis://127.0.0.1:1/0"), "x:").await;
    assert!(r.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}
