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
    /// No keys: the API is open — on a loopback `listen` only, unless `allow_open` (see
    /// `auth::check_not_open`).
    pub keys: Vec<ApiKeyConfig>,
    /// Serve an API without keys on a non-loopback address too (otherwise `serve` refuses to start,
    /// and an API whose last key is revoked refuses every request).
    pub allow_open: bool,
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
            allow_open: false,
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

impl ApiConfig {
    /// Whether `listen` is a loopback address (only this machine can connect). A host name other
    /// than `localhost` counts as not loopback: it may resolve to anything.
    pub fn listens_on_loopback(&self) -> bool {
        if let Ok(addr) = self.listen.parse::<std::net::SocketAddr>() {
            return addr.ip().is_loopback();
        }
        self.listen.rsplit_once(':').is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
    }

    /// Whether the API may run without any key: on loopback, or when the site asks for it.
    pub fn open_allowed(&self) -> bool {
        self.allow_open || self.listens_on_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::ApiConfig;

    #[test]
    fn only_loopback_addresses_count_as_loopback() {
        let on = |listen: &str| ApiConfig { listen: listen.into(), ..ApiConfig::default() }.listens_on_loopback();
        for yes in ["127.0.0.1:8080", "127.1.2.3:80", "[::1]:8080", "localhost:8080", "LOCALHOST:1"] {
            assert!(on(yes), "{yes}");
        }
        for no in ["0.0.0.0:8080", "[::]:8080", "192.168.1.10:8080", "panoptes.example:8080", "", "8080"] {
            assert!(!on(no), "{no}");
        }
        let open = ApiConfig { listen: "0.0.0.0:8080".into(), allow_open: true, ..ApiConfig::default() };
        assert!(open.open_allowed());
        assert!(ApiConfig::default().open_allowed());
    }
}
