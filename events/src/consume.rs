//! Running a consumer: take the next delivery, apply it, commit the offset
//! only after the effect's database transaction committed. A handler that
//! fails is retried with backoff (the offset is not committed, so nothing
//! is skipped); an event that can never be applied (undecodable) is
//! logged, counted and committed, so one bad record cannot stop the group.

use std::future::Future;
use std::time::Duration;

use crate::{Broker, Delivery, Subscription};

/// `service`'s consumer (group `group`) of `topic` on `broker`, running
/// `handle` on each delivery until dropped: subscribing is retried with the
/// same backoff as a failing handler while the broker is unreachable, and
/// nothing runs with events off. The one way a service consumes events.
pub fn start<H, Fut, E>(
    broker: Broker,
    topic: &'static str,
    group: &'static str,
    service: &'static str,
    handle: H,
) -> oms_runtime::background::Background
where
    H: FnMut(Delivery) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Handled, E>> + Send,
    E: std::fmt::Display + Send,
{
    oms_runtime::background::Background::spawn(async move {
        let mut failures = 0u32;
        let subscription = loop {
            match broker.subscribe(topic, group).await {
                Ok(Some(subscription)) => break subscription,
                Ok(None) => return,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::warn!(service, topic, error = %e, "cannot subscribe yet; retrying with backoff");
                    }
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        };
        run(service, subscription, handle).await;
    })
}

/// What a handler made of a delivery.
#[derive(Debug)]
pub enum Handled {
    /// Applied now, or already applied before (the inbox said so).
    Done,
    /// Cannot ever be applied; skipped with the reason.
    Poison(String),
}

/// Consumes `subscription` with `handle` until the task is dropped.
pub async fn run<H, Fut, E>(
    service: &'static str,
    mut subscription: Box<dyn Subscription>,
    mut handle: H,
) where
    H: FnMut(Delivery) -> Fut + Send,
    Fut: Future<Output = Result<Handled, E>> + Send,
    E: std::fmt::Display,
{
    for name in [
        "events_consumed_total",
        "events_consume_errors_total",
        "events_poison_total",
    ] {
        oms_telemetry::metrics::zero(name, &[("service", service)]);
    }
    let mut failures = 0u32;
    loop {
        let delivery = match subscription.next().await {
            Ok(delivery) => delivery,
            Err(e) => {
                failures = failures.saturating_add(1);
                note_failure(service, failures, &e);
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        loop {
            match handle(delivery.clone()).await {
                Ok(Handled::Done) => {
                    metrics::counter!("events_consumed_total", "service" => service).increment(1);
                    break;
                }
                Ok(Handled::Poison(reason)) => {
                    metrics::counter!("events_poison_total", "service" => service).increment(1);
                    tracing::error!(
                        service,
                        event_id = %delivery.record.id,
                        topic = %delivery.topic,
                        offset = delivery.offset,
                        reason,
                        "skipping an event that cannot be applied"
                    );
                    break;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    note_failure(service, failures, &e);
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
        failures = 0;
        if let Err(e) = subscription.commit(&delivery).await {
            // The effect is in the database with its inbox row: a
            // redelivery after this is recognised and skipped.
            tracing::warn!(service, error = %e, "committing a consumer offset failed");
        }
    }
}

fn note_failure(service: &'static str, failures: u32, error: &dyn std::fmt::Display) {
    metrics::counter!("events_consume_errors_total", "service" => service).increment(1);
    if failures == 1 {
        tracing::warn!(service, error = %error, "consuming events failed; retrying with backoff");
    } else {
        tracing::debug!(service, error = %error, "consuming events still failing");
    }
}

fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(8);
    (Duration::from_millis(100) * 2u32.pow(exponent)).min(Duration::from_secs(10))
}
