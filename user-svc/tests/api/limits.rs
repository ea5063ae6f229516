//! The gRPC listener's bounds, from outside, with a client that ignores
//! the rules: streams past every limit, bodies declared and never sent,
//! idle connections past the cap. Memory is the test process's own (the
//! service runs in it), so the bounds measured hold for one service.

use std::time::Duration;

use testkit::{RawH2, TestDb, eventually, memory};

use crate::helpers::*;

testkit::test_on_each_db!(
    streams_past_the_call_limit_are_refused_and_memory_stays_bounded,
    declared_bodies_never_sent_reserve_nothing_and_end_at_the_deadline,
    connections_past_the_cap_are_closed_and_open_ones_keep_working,
    connections_are_aged_out_so_clients_reconnect,
);

const LOGIN: &str = "/oms.user.v1.AuthService/Login";
const MIB: u64 = 1024 * 1024;

use testkit::listener_refusals as refusals;

async fn streams_past_the_call_limit_are_refused_and_memory_stays_bounded(db: TestDb) {
    let svc = start(&db, &[]).await;
    let max_calls = 2_048;
    let (rss_before, _) = memory();
    // Three connections, 1,500 streams each that send headers and never
    // finish: more than the listener's calls (and than one connection's
    // SETTINGS_MAX_CONCURRENT_STREAMS would allow an honest client).
    let mut connections = Vec::new();
    for _ in 0..3 {
        let mut h2 = RawH2::connect(svc.addr).await.expect("connects");
        for _ in 0..1_500 {
            h2.open_call(LOGIN, None).await.expect("sent");
        }
        connections.push(h2);
    }
    let opened = 3 * 1_500;
    let ended = eventually(
        Duration::from_secs(30),
        "the calls past the limit to end",
        || {
            let ended: usize = connections.iter().map(RawH2::ended).sum();
            async move { (ended >= opened - max_calls).then_some(ended) }
        },
    )
    .await;
    assert_eq!(
        ended,
        opened - max_calls,
        "the calls within the limit stay open"
    );
    assert_eq!(
        refusals("calls"),
        u64::try_from(opened - max_calls).unwrap()
    );
    let (rss_after, _) = memory();
    let grown = rss_after.saturating_sub(rss_before);
    eprintln!("RSS grew by {} MiB", grown / MIB);
    // SECURITY.md states this bound: 2,048 open calls and the refusals of
    // 2,452 more (50,000 such streams on one connection once took 556 MB).
    assert!(grown < 96 * MIB, "RSS grew by {} MiB", grown / MIB);
    // The refusals answered; an honest call on a connection of its own
    // is refused too while the listener is full, and served once the
    // abuser is gone.
    drop(connections);
    eventually(
        Duration::from_secs(10),
        "the listener to have room again",
        || {
            let svc_channel = svc.channel();
            async move {
                testkit::users::login(svc_channel, "nobody@example.com", "wrong password")
                    .await
                    .err()
                    .filter(|e| e.code() == tonic::Code::Unauthenticated)
            }
        },
    )
    .await;
}

async fn declared_bodies_never_sent_reserve_nothing_and_end_at_the_deadline(db: TestDb) {
    let svc = start(&db, &[("OMS_GRPC_MAX_CALL_TIME", "2s")]).await;
    let (_, space_before) = memory();
    let (mut h2, calls) = (RawH2::connect(svc.addr).await.expect("connects"), 1_000);
    for _ in 0..calls {
        // 4 MiB declared (the largest message a service takes), 0 sent.
        h2.open_call(LOGIN, Some(4 * 1024 * 1024))
            .await
            .expect("sent");
    }
    // Each call would have reserved 4 MiB as soon as its prefix arrived:
    // 4 GiB of address space for these 1,000. Sampled all along, from
    // sending to the end of every call, which no grpc-timeout asked for:
    // the server's own deadline ends them.
    let peak = std::sync::atomic::AtomicU64::new(0);
    eventually(
        Duration::from_secs(30),
        "every unfinished call to end",
        || {
            peak.fetch_max(memory().1, std::sync::atomic::Ordering::Relaxed);
            let ended = h2.ended();
            async move { (ended == calls).then_some(()) }
        },
    )
    .await;
    let grown = peak.into_inner().saturating_sub(space_before);
    eprintln!("address space grew by {} MiB at most", grown / MIB);
    assert!(
        grown < 512 * MIB,
        "address space grew by {} MiB",
        grown / MIB
    );
}

async fn connections_past_the_cap_are_closed_and_open_ones_keep_working(db: TestDb) {
    let svc = start(&db, &[("OMS_GRPC_MAX_CONNECTIONS", "8")]).await;
    // An honest client, connected before the flood.
    let honest = svc.channel();
    let wrong = testkit::users::login(honest.clone(), "a@example.com", "wrong password").await;
    assert_eq!(wrong.unwrap_err().code(), tonic::Code::Unauthenticated);
    // Seven idle connections fill the listener.
    let mut idle = Vec::new();
    for _ in 0..7 {
        idle.push(RawH2::connect(svc.addr).await.expect("within the cap"));
    }
    assert!(
        RawH2::connect(svc.addr).await.is_none(),
        "a connection past the cap is closed before the server greets it"
    );
    assert!(refusals("connections") >= 1);
    let wrong = testkit::users::login(honest, "a@example.com", "wrong password").await;
    assert_eq!(wrong.unwrap_err().code(), tonic::Code::Unauthenticated);
    // A place freed is a place again.
    drop(idle.pop());
    eventually(
        Duration::from_secs(10),
        "a freed place to be taken",
        || async move { RawH2::connect(svc.addr).await.map(|_| ()) },
    )
    .await;
}

async fn connections_are_aged_out_so_clients_reconnect(db: TestDb) {
    let svc = start(
        &db,
        &[
            ("OMS_MAX_CONNECTION_AGE", "1s"),
            ("OMS_GRPC_MAX_CALL_TIME", "1s"),
        ],
    )
    .await;
    // An idle connection and one with a call in flight are both closed
    // once their age and grace have passed; a new one works meanwhile.
    let idle = RawH2::connect(svc.addr).await.expect("connects");
    let mut busy = RawH2::connect(svc.addr).await.expect("connects");
    busy.open_call(LOGIN, None).await.expect("sent");
    eventually(Duration::from_secs(15), "aged connections to close", || {
        let closed = idle.closed() && busy.closed();
        async move { closed.then_some(()) }
    })
    .await;
    assert!(
        testkit::health_status(svc.channel(), "").await.is_ok(),
        "a new connection is served"
    );
}
