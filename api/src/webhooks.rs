//! Webhooks: every live detection event (matches only by default) is POSTed as JSON to each
//! configured URL, retried with exponential backoff (0.5 s doubling, at most 30 s apart) up to
//! `max_attempts`. Deliveries run on the blocking pool, at most `max_in_flight` at once; beyond that,
//! or when the subscriber lags the event stream, events are dropped and counted, never queued without
//! bound. The engine never waits for a receiver.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::web;
use panoptes_engine::alerts::Output;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// http:// or https:// endpoints; empty disables webhooks.
    pub urls: Vec<String>,
    /// Only events with a recognised person.
    pub matches_only: bool,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub max_in_flight: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self { urls: Vec::new(), matches_only: true, timeout_ms: 3000, max_attempts: 5, max_in_flight: 64 }
    }
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (i, u) in self.urls.iter().enumerate() {
            let lower = u.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(format!("api.webhooks.urls[{i}] must be an http:// or https:// URL"));
            }
        }
        if self.max_attempts == 0 {
            return Err("api.webhooks.max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct WebhookCounters {
    delivered: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicUsize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    pub delivered: u64,
    pub retries: u64,
    /// Gave up after `max_attempts`.
    pub failed: u64,
    /// Never attempted: too many deliveries in flight, or the event stream outran the dispatcher.
    pub dropped: u64,
}

impl WebhookCounters {
    pub fn stats(&self) -> WebhookStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WebhookStats {
            delivered: get(&self.delivered),
            retries: get(&self.retries),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
        }
    }
}

/// Starts the dispatcher (a no-op without URLs). Call inside the actix system.
pub fn spawn(state: web::Data<AppState>) {
    let config = state.config.webhooks.clone();
    if config.urls.is_empty() {
        return;
    }
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(config.timeout_ms.max(1))).build();
    let mut rx = state.events.subscribe();
    actix_web::rt::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    state.webhooks.dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(missed = n, "webhook dispatcher fell behind the event stream");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(routing) = crate::events::routed(&state, &event, Output::Webhooks) else { continue };
            // `matches_only` stands only while no rule is in force: then the rules decide.
            if routing.alerts.is_empty() && config.matches_only && event.detection.person_id.is_none() {
                continue;
            }
            let body = crate::events::render(&state, &event, &routing).await.to_string();
            for url in &config.urls {
                let counters = &state.webhooks;
                if counters.in_flight.load(Ordering::Relaxed) >= config.max_in_flight {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                counters.in_flight.fetch_add(1, Ordering::Relaxed);
                let (state, agent, url, body) = (state.clone(), agent.clone(), url.clone(), body.clone());
                let attempts = config.max_attempts;
                actix_web::rt::spawn(async move {
                    deliver(&state.webhooks, &agent, &url, &body, attempts).await;
                    state.webhooks.in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    });
}

async fn deliver(counters: &WebhookCounters, agent: &ureq::Agent, url: &str, body: &str, attempts: u32) {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=attempts {
        let (agent, target, payload) = (agent.clone(), url.to_string(), body.to_string());
        let outcome = web::block(move || {
            agent
                .post(&target)
                .set("Content-Type", "application/json")
                .send_string(&payload)
                .map(|r| r.status())
                .map_err(|e| short(&e))
        })
        .await;
        match outcome {
            Ok(Ok(_)) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(host = %url_host(url), attempt, error = %e, "webhook delivery failed")
            }
            Err(e) => tracing::warn!(attempt, error = %e, "webhook task failed"),
        }
        if attempt < attempts {
            counters.retries.fetch_add(1, Ordering::Relaxed);
            actix_web::rt::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
    counters.failed.fetch_add(1, Ordering::Relaxed);
}

/// Scheme and host only: a webhook URL may carry a token in its path or query.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host.rsplit('@').next().unwrap_or_default().to_string()
}

fn short(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, _) => format!("HTTP {code}"),
        ureq::Error::Transport(t) => t.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_hosts_carry_no_credentials_or_paths() {
        assert_eq!(url_host("https://user:pw@hooks.example:8443/t/SECRET?x=1"), "hooks.example:8443");
        assert_eq!(url_host("http://10.0.0.1/hook"), "10.0.0.1");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let bad = WebhookConfig { urls: vec!["ftp://x".into()], ..WebhookConfig::default() };
        assert!(bad.validate().is_err());
        let good = WebhookConfig { urls: vec!["https://x/h".into()], ..WebhookConfig::default() };
        assert!(good.validate().is_ok());
    }
}
