//! The key-value store contract, run against the in-process map and Redis.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use oms_store::kv::KvStore;
use testkit::eventually;

testkit::test_on_each_kv!(
    set_then_get_returns_the_value,
    get_many_answers_each_key_in_order,
    set_if_absent_sets_only_once,
    take_hands_the_value_to_exactly_one_caller,
    entries_expire_after_their_ttl,
    increment_counts_within_a_window,
    decrement_takes_back_an_increment_and_never_creates_a_count,
);

async fn set_then_get_returns_the_value(kv: Arc<dyn KvStore>) {
    assert_eq!(kv.get("k").await.unwrap(), None);
    kv.set("k", b"v1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    kv.set("k", b"v2", Duration::from_secs(60)).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(kv.delete("k").await.unwrap());
    assert!(!kv.delete("k").await.unwrap());
    assert_eq!(kv.get("k").await.unwrap(), None);
}

async fn get_many_answers_each_key_in_order(kv: Arc<dyn KvStore>) {
    assert_eq!(
        kv.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    kv.set("a", b"1", Duration::from_secs(60)).await.unwrap();
    kv.set("c", b"3", Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        kv.get_many(&["c", "missing", "a"]).await.unwrap(),
        vec![Some(b"3".to_vec()), None, Some(b"1".to_vec())]
    );
}

async fn set_if_absent_sets_only_once(kv: Arc<dyn KvStore>) {
    assert!(
        kv.set_if_absent("once", b"a", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !kv.set_if_absent("once", b"b", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(kv.get("once").await.unwrap().as_deref(), Some(&b"a"[..]));
}

async fn take_hands_the_value_to_exactly_one_caller(kv: Arc<dyn KvStore>) {
    kv.set("token", b"family-1", Duration::from_secs(60))
        .await
        .unwrap();
    let takers = (0..16).map(|_| {
        let kv = kv.clone();
        tokio::spawn(async move { kv.take("token").await.unwrap() })
    });
    let mut winners = 0;
    for taker in takers {
        if taker.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(kv.get("token").await.unwrap(), None);
}

async fn entries_expire_after_their_ttl(kv: Arc<dyn KvStore>) {
    kv.set("short", b"x", Duration::from_millis(50))
        .await
        .unwrap();
    kv.set("long", b"y", Duration::from_secs(60)).await.unwrap();
    eventually(Duration::from_secs(5), "the short entry to expire", || {
        let kv = kv.clone();
        async move { kv.get("short").await.unwrap().is_none().then_some(()) }
    })
    .await;
    assert_eq!(kv.get("long").await.unwrap().as_deref(), Some(&b"y"[..]));
}

async fn increment_counts_within_a_window(kv: Arc<dyn KvStore>) {
    for expected in 1..=3 {
        assert_eq!(
            kv.increment("hits", Duration::from_secs(60)).await.unwrap(),
            expected
        );
    }
    assert_eq!(
        kv.increment("other", Duration::from_millis(50))
            .await
            .unwrap(),
        1
    );
    eventually(Duration::from_secs(5), "the window to close", || {
        let kv = kv.clone();
        async move { kv.get("other").await.unwrap().is_none().then_some(()) }
    })
    .await;
    assert_eq!(
        kv.increment("other", Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
}

async fn decrement_takes_back_an_increment_and_never_creates_a_count(kv: Arc<dyn KvStore>) {
    let window = Duration::from_secs(60);
    assert_eq!(kv.decrement("absent").await.unwrap(), 0);
    assert_eq!(kv.get("absent").await.unwrap(), None, "nothing created");
    assert_eq!(kv.increment("tries", window).await.unwrap(), 1);
    assert_eq!(kv.increment("tries", window).await.unwrap(), 2);
    assert_eq!(kv.decrement("tries").await.unwrap(), 1);
    assert_eq!(kv.decrement("tries").await.unwrap(), 0);
    assert_eq!(kv.decrement("tries").await.unwrap(), 0, "never below zero");
    assert_eq!(kv.increment("tries", window).await.unwrap(), 1);
    // The window is the first increment's: a take-back keeps it.
    kv.increment("brief", Duration::from_millis(50))
        .await
        .unwrap();
    kv.increment("brief", Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(kv.decrement("brief").await.unwrap(), 1);
    eventually(Duration::from_secs(5), "the window to close", || {
        let kv = kv.clone();
        async move { kv.get("brief").await.unwrap().is_none().then_some(()) }
    })
    .await;
}
