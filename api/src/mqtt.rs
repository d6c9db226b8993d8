//! MQTT, the bus Home Assistant and most VMS integrations speak (`[mqtt]`, off without a URL).
//!
//! Topics, under `topic_prefix` (`panoptes`):
//! - `<prefix>/events`: every appearance as JSON, as the live event stream sends it, plus the
//!   camera's name and topic slug;
//! - `<prefix>/<camera>/person` (retained): the last person seen on the camera (`<camera>` is the
//!   camera's name made topic-safe: lower case, runs of other characters as `_`);
//! - `<prefix>/<camera>/state` (retained): the camera's state when it changes (`streaming`,
//!   `backoff`, …), with its last error;
//! - `<prefix>/node/<node_id>/availability` (retained): `online` once connected, `offline` as the
//!   broker's last will when this engine goes away;
//! - Home Assistant discovery (`<discovery_prefix>/sensor/panoptes_<camera id>/config`, retained): a
//!   sensor per camera whose state is the last person seen, announced when this engine starts running
//!   the camera.
//!
//! A broker that is down or slow never slows the engine: messages go into rumqttc's bounded request
//! queue with `try_publish`; when it is full they are dropped and counted. The event loop reconnects
//! on its own, waiting 1 s doubling to 30 s between attempts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use panoptes_engine::alerts::Output;
use panoptes_engine::error_chain::error_chain;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`; empty: MQTT off.
    pub url: String,
    pub username: String,
    pub password: String,
    /// PEM file of the certificate authorities an `mqtts://` broker is checked against; empty: the
    /// system's.
    pub ca_file: String,
    /// Empty: `panoptes-<node id>`.
    pub client_id: String,
    pub topic_prefix: String,
    /// Home Assistant's discovery prefix; empty: no discovery messages.
    pub discovery_prefix: String,
    /// Only appearances of a recognised person on `<prefix>/events`.
    pub matches_only: bool,
    /// Messages waiting for the broker before new ones are dropped.
    pub queue: usize,
    pub keep_alive_secs: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            username: String::new(),
            password: String::new(),
            ca_file: String::new(),
            client_id: String::new(),
            topic_prefix: "panoptes".into(),
            discovery_prefix: "homeassistant".into(),
            matches_only: false,
            queue: 1000,
            keep_alive_secs: 30,
        }
    }
}

/// A configuration MQTT cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum MqttConfigError {
    #[error("mqtt.url {0:?} must be mqtt://host[:port] or mqtts://host[:port]")]
    Url(String),
    #[error("mqtt.topic_prefix {0:?} must be non-empty and hold no '+', '#' or empty levels")]
    Prefix(String),
    #[error("mqtt.queue must be at least 1")]
    Queue,
    #[error("mqtt.ca_file {path}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mqtt.ca_file {0} holds no certificate")]
    NoCertificate(String),
    #[error("mqtt: TLS set-up")]
    Tls(#[source] rustls::Error),
}

/// Where the broker is, from `mqtt.url`.
#[derive(Debug, PartialEq)]
struct Broker {
    host: String,
    port: u16,
    tls: bool,
}

fn parse_url(url: &str) -> Result<Broker, MqttConfigError> {
    let bad = || MqttConfigError::Url(url.to_string());
    let (tls, rest) = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mqtt") || scheme.eq_ignore_ascii_case("tcp") => {
            (false, rest)
        }
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mqtts") || scheme.eq_ignore_ascii_case("ssl") => {
            (true, rest)
        }
        _ => return Err(bad()),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return Err(bad());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, p.parse::<u16>().map_err(|_| bad())?),
        _ => (authority, if tls { 8883 } else { 1883 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(Broker { host: host.to_string(), port, tls })
}

impl MqttConfig {
    pub fn validate(&self) -> Result<(), MqttConfigError> {
        if self.url.is_empty() {
            return Ok(());
        }
        parse_url(&self.url)?;
        let p = &self.topic_prefix;
        if p.is_empty() || p.contains(['+', '#']) || p.split('/').any(str::is_empty) {
            return Err(MqttConfigError::Prefix(p.clone()));
        }
        if self.queue == 0 {
            return Err(MqttConfigError::Queue);
        }
        Ok(())
    }

    fn options(&self, node_id: &str) -> Result<MqttOptions, MqttConfigError> {
        let broker = parse_url(&self.url)?;
        let client_id = if self.client_id.is_empty() { format!("panoptes-{node_id}") } else { self.client_id.clone() };
        let mut o = MqttOptions::new(client_id, broker.host, broker.port);
        o.set_keep_alive(Duration::from_secs(self.keep_alive_secs.max(5)));
        if !self.username.is_empty() {
            o.set_credentials(self.username.clone(), self.password.clone());
        }
        o.set_last_will(LastWill::new(
            availability_topic(&self.topic_prefix, node_id),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if broker.tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(self.tls_config()?))));
        }
        Ok(o)
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, MqttConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        if self.ca_file.is_empty() {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot read is one fewer authority, not a failure.
                let _ = roots.add(cert);
            }
        } else {
            let pem = std::fs::read(&self.ca_file)
                .map_err(|source| MqttConfigError::CaFile { path: self.ca_file.clone(), source })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|source| MqttConfigError::CaFile { path: self.ca_file.clone(), source })?;
                roots.add(cert).map_err(MqttConfigError::Tls)?;
            }
            if roots.is_empty() {
                return Err(MqttConfigError::NoCertificate(self.ca_file.clone()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(MqttConfigError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

fn availability_topic(prefix: &str, node_id: &str) -> String {
    format!("{prefix}/node/{}/availability", slug(node_id))
}

/// A camera's (or node's) name as one topic level: lower case ASCII letters and digits, `-`, and
/// `_` for every run of anything else (spaces, `/`, `+`, `#`, accents).
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "camera".to_string()
    } else {
        trimmed.to_string()
    }
}

#[derive(Default)]
pub struct MqttCounters {
    published: AtomicU64,
    dropped: AtomicU64,
    connections: AtomicU64,
    connected: AtomicBool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MqttStats {
    /// Messages handed to the client for the broker.
    pub published: u64,
    /// Messages dropped because the queue to the broker was full (broker down or slow).
    pub dropped: u64,
    /// Connections acknowledged by the broker (the first and every reconnection).
    pub connections: u64,
    pub connected: bool,
}

impl MqttCounters {
    pub fn stats(&self) -> MqttStats {
        MqttStats {
            published: self.published.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

/// Publishes without waiting: a full queue drops the message and counts it.
struct Publisher {
    client: AsyncClient,
    state: web::Data<AppState>,
}

impl Publisher {
    fn send(&self, topic: String, retain: bool, payload: Vec<u8>) {
        let counters = &self.state.mqtt;
        match self.client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => counters.published.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn json(&self, topic: String, retain: bool, value: &serde_json::Value) {
        self.send(topic, retain, value.to_string().into_bytes());
    }
}

/// Starts MQTT (a no-op without `mqtt.url`): the connection's event loop, the appearance publisher
/// and the camera-state watcher. Call inside the actix system.
pub fn spawn(state: web::Data<AppState>, config: MqttConfig, node_id: String) -> Result<(), MqttConfigError> {
    if config.url.is_empty() {
        return Ok(());
    }
    config.validate()?;
    let options = config.options(&node_id)?;
    let (client, mut eventloop) = AsyncClient::new(options, config.queue);
    let prefix = config.topic_prefix.clone();
    let availability = availability_topic(&prefix, &node_id);
    let broker = parse_url(&config.url).map(|b| format!("{}:{}", b.host, b.port)).unwrap_or_default();

    // The connection: rumqttc reconnects when polled again after an error.
    let connection_state = state.clone();
    let online = Publisher { client: client.clone(), state: state.clone() };
    actix_web::rt::spawn(async move {
        let counters = &connection_state.mqtt;
        let mut wait = Duration::from_secs(1);
        // The reason the last attempt failed: a new reason is a warning (a wrong password or CA must
        // show at the default log level), the same one again only a debug line every retry.
        let mut failing: Option<String> = None;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    counters.connected.store(true, Ordering::Relaxed);
                    wait = Duration::from_secs(1);
                    failing = None;
                    tracing::info!(%broker, "MQTT connected");
                    online.send(availability.clone(), true, b"online".to_vec());
                }
                Ok(_) => {}
                Err(e) => {
                    let reason = error_chain(&e);
                    if counters.connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(%broker, error = %reason, "MQTT connection lost; reconnecting");
                    } else if failing.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(%broker, error = %reason, retry_in = ?wait, "MQTT cannot connect");
                    } else {
                        tracing::debug!(%broker, error = %reason, "MQTT connection attempt failed again");
                    }
                    failing = Some(reason);
                    actix_web::rt::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    });

    // Appearances.
    let publisher = Publisher { client: client.clone(), state: state.clone() };
    let mut rx = state.events.subscribe();
    let (events_prefix, matches_only) = (prefix.clone(), config.matches_only);
    actix_web::rt::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    publisher.state.mqtt.dropped.fetch_add(n, Ordering::Relaxed);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(routing) = crate::events::routed(&publisher.state, &event, Output::Mqtt) else { continue };
            // `matches_only` stands only while no rule is in force: then the rules decide.
            let wanted = !routing.alerts.is_empty() || !matches_only || event.detection.person_id.is_some();
            if !wanted {
                continue;
            }
            let camera = camera_name(&publisher.state, event.detection.camera_id).await;
            let mut body = crate::events::render(&publisher.state, &event, &routing).await;
            body["camera_name"] = serde_json::json!(camera);
            body["camera_topic"] = serde_json::json!(slug(&camera));
            publisher.json(format!("{events_prefix}/events"), false, &body);
            // The camera's last person seen follows appearances as they begin, not their grouping.
            if event.grouped.is_some() {
                continue;
            }
            let event = &event.detection;
            let seen = serde_json::json!({
                "person_id": event.person_id,
                "person_name": body.get("person_name").cloned().unwrap_or_default(),
                "score": event.score,
                "detection_id": event.id,
                "detected_at": event.detected_at,
            });
            publisher.json(format!("{events_prefix}/{}/person", slug(&camera)), true, &seen);
        }
    });

    // Camera states (on change) and discovery (when this engine starts running a camera).
    let watcher = Publisher { client, state: state.clone() };
    let discovery = config.discovery_prefix.clone();
    actix_web::rt::spawn(async move {
        let Some(board) = watcher.state.engine.as_ref().map(|e| e.camera_status.clone()) else { return };
        let mut known: HashMap<i64, (String, Option<&'static str>)> = HashMap::new();
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let reports = board.get();
            for r in reports.iter() {
                let topic = slug(&r.name);
                let state_now = r.status.as_ref().map(|s| s.state.as_str());
                let entry = known.entry(r.id);
                let fresh = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
                let previous = entry.or_insert_with(|| (topic.clone(), None));
                if fresh || previous.0 != topic {
                    previous.0 = topic.clone();
                    if !discovery.is_empty() {
                        let config = discovery_config(&prefix, &node_id, r.id, &r.name, &topic);
                        watcher.json(format!("{discovery}/sensor/panoptes_{}/config", r.id), true, &config);
                    }
                }
                if state_now.is_some() && previous.1 != state_now {
                    previous.1 = state_now;
                    let last_error = r.status.as_ref().and_then(|s| s.last_error.clone());
                    let body = serde_json::json!({
                        "camera_id": r.id,
                        "camera_name": r.name,
                        "state": state_now,
                        "last_error": last_error,
                    });
                    watcher.json(format!("{prefix}/{topic}/state"), true, &body);
                }
            }
            known.retain(|id, _| reports.iter().any(|r| r.id == *id));
        }
    });
    Ok(())
}

/// Home Assistant's discovery message for a camera's "last person seen" sensor.
fn discovery_config(prefix: &str, node_id: &str, camera_id: i64, name: &str, topic: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "Last person seen",
        "unique_id": format!("panoptes_{camera_id}_person"),
        "object_id": format!("panoptes_{topic}_person"),
        "state_topic": format!("{prefix}/{topic}/person"),
        "value_template": "{{ value_json.person_name or 'unknown' }}",
        "json_attributes_topic": format!("{prefix}/{topic}/person"),
        "availability_topic": availability_topic(prefix, node_id),
        "icon": "mdi:face-recognition",
        "device": {
            "identifiers": [format!("panoptes_camera_{camera_id}")],
            "name": name,
            "manufacturer": "Panoptes",
            "model": "camera",
        },
    })
}

/// The camera's name from the status board (it runs here, since its event came from here), else
/// from the store.
async fn camera_name(state: &AppState, camera_id: i64) -> String {
    if let Some(r) =
        state.engine.as_ref().and_then(|e| e.camera_status.get().iter().find(|r| r.id == camera_id).cloned())
    {
        return r.name;
    }
    match state.store.camera(camera_id).await {
        Ok(Some(c)) => c.name,
        _ => format!("camera-{camera_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_default_ports_and_bad_ones_are_named() {
        assert_eq!(parse_url("mqtt://broker").unwrap(), Broker { host: "broker".into(), port: 1883, tls: false });
        assert_eq!(
            parse_url("mqtts://b.example:9000/").unwrap(),
            Broker { host: "b.example".into(), port: 9000, tls: true }
        );
        assert_eq!(parse_url("mqtts://b.example").unwrap().port, 8883);
        assert_eq!(parse_url("mqtt://[::1]:1884").unwrap(), Broker { host: "::1".into(), port: 1884, tls: false });
        for bad in
            ["broker:1883", "http://broker", "mqtt://", "mqtt://u:p@broker", "mqtt://b:0", "mqtt://b:x", "mqtt://b/t"]
        {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn the_config_refuses_what_would_publish_nowhere_useful() {
        let ok = MqttConfig { url: "mqtt://b".into(), ..MqttConfig::default() };
        assert!(ok.validate().is_ok());
        assert!(MqttConfig::default().validate().is_ok(), "off");
        for prefix in ["", "a/#", "a/+/b", "a//b", "/a"] {
            let c = MqttConfig { topic_prefix: prefix.into(), ..ok.clone() };
            assert!(c.validate().is_err(), "{prefix:?}");
        }
        assert!(MqttConfig { queue: 0, ..ok.clone() }.validate().is_err());
        let missing_ca = MqttConfig { url: "mqtts://b".into(), ca_file: "/nonexistent/ca.pem".into(), ..ok };
        assert!(missing_ca.tls_config().unwrap_err().to_string().contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn camera_names_become_single_topic_levels() {
        assert_eq!(slug("Front Door"), "front_door");
        assert_eq!(slug("lobby/left #2 + más"), "lobby_left_2_m_s");
        assert_eq!(slug("cam-7"), "cam-7");
        assert_eq!(slug("###"), "camera");
    }

    #[test]
    fn discovery_names_the_state_topic_and_a_stable_id() {
        let c = discovery_config("panoptes", "node-a", 7, "Front Door", "front_door");
        assert_eq!(c["state_topic"], "panoptes/front_door/person");
        assert_eq!(c["unique_id"], "panoptes_7_person");
        assert_eq!(c["availability_topic"], "panoptes/node/node-a/availability");
        assert_eq!(c["device"]["name"], "Front Door");
    }
}
