//! The API's settings (`[api]` in config/panoptes.toml).

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, live events and identify.
    Viewer,
    /// Everything, writes included.
    Admin,
}

impl Role {
    /// The name used in the configuration, the `api_keys` table and error messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`, if any.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Viewer, Role::Admin].into_iter().find(|r| r.as_str() == name)
    }
}

/// One API key. Give `key_sha256` (hex of the key's SHA-256) rather than `key` so the file holds no
/// secret: `printf %s "$KEY" | sha256sum`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    pub role: Option<Role>,
    pub key: String,
    pub key_sha256: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: String,
    /// No keys: the API is open (fine on the loopback default; a warning says so at start).
    pub keys: Vec<ApiKeyConfig>,
    /// Leave /healthz, /readyz and /metrics open without a key (probes and Prometheus).
    pub open_probes: bool,
    /// Token bucket per key (or per client address without a valid key): sustained requests/s.
    pub rate_limit_per_second: f64,
    pub rate_limit_burst: f64,
    pub json_limit_bytes: usize,
    pub upload_limit_bytes: usize,
    /// File-source cameras must lie under this directory ("" refuses file cameras).
    pub media_root: String,
    /// Origins allowed by CORS ("*" for any); empty sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// A live-events client this many events behind is disconnected.
    pub events_buffer: usize,
    pub webhooks: crate::webhooks::WebhookConfig,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP (both or neither).
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            keys: Vec::new(),
            open_probes: true,
            rate_limit_per_second: 200.0,
            rate_limit_burst: 400.0,
            json_limit_bytes: 64 * 1024,
            upload_limit_bytes: 10 * 1024 * 1024,
            media_root: ".local/demo".into(),
            cors_origins: Vec::new(),
            events_buffer: 1024,
            webhooks: crate::webhooks::WebhookConfig::default(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}
