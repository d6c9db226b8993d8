//! API keys and roles. Keys are held as SHA-256 digests and compared in constant time; the key itself
//! is never logged or stored. Two sources: the configuration (digests, or plain keys hashed at start)
//! and the `api_keys` table (keys created through the API), re-read after every change made here and
//! every few seconds, so a key created or revoked on another node takes effect here too.

use std::sync::{Arc, RwLock};

use actix_web::http::Method;
use panoptes_engine::storage::{StorageError, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ApiKeyConfig, Role};

#[derive(Clone, Debug)]
struct Key {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub key_name: String,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub struct Keys {
    configured: Arc<Vec<Key>>,
    /// From the database; shared by every clone (each worker thread's copy of the state).
    stored: Arc<RwLock<Vec<Key>>>,
    /// Without any key, the API is open (true) or refuses every request (false: a non-loopback
    /// address without `api.allow_open`, whose last key was revoked).
    open_allowed: bool,
}

impl Default for Keys {
    fn default() -> Self {
        Keys { configured: Arc::default(), stored: Arc::default(), open_allowed: true }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error("api.keys[{0}] needs exactly one of key or key_sha256")]
    KeyOrDigest(usize),
    #[error("api.keys[{0}].key_sha256 must be 64 hex characters")]
    BadDigest(usize),
    #[error("api.keys[{0}] needs a role (admin or viewer)")]
    NoRole(usize),
    #[error("api.keys[{0}].key is shorter than 16 characters")]
    TooShort(usize),
}

/// A new random key (256 bits, hex, with a prefix that makes it recognisable in a secret scanner)
/// and its digest.
pub fn generate_key() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("pnp_{}", hex::encode(bytes));
    let digest = Sha256::digest(key.as_bytes()).into();
    (key, digest)
}

impl Keys {
    pub fn from_config(config: &[ApiKeyConfig]) -> Result<Keys, KeyConfigError> {
        let mut keys = Vec::with_capacity(config.len());
        for (i, k) in config.iter().enumerate() {
            let role = k.role.clone().ok_or(KeyConfigError::NoRole(i))?;
            let digest = match (k.key.is_empty(), k.key_sha256.is_empty()) {
                (false, true) if k.key.len() < 16 => return Err(KeyConfigError::TooShort(i)),
                (false, true) => Sha256::digest(k.key.as_bytes()).into(),
                (true, false) => hex::decode(k.key_sha256.trim())
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .ok_or(KeyConfigError::BadDigest(i))?,
                _ => return Err(KeyConfigError::KeyOrDigest(i)),
            };
            let name = if k.name.is_empty() { format!("key{i}") } else { k.name.clone() };
            keys.push(Key { name, role, digest });
        }
        Ok(Keys { configured: Arc::new(keys), stored: Arc::default(), open_allowed: true })
    }

    /// Whether, without any key, the API is open (see the field).
    pub fn with_open_allowed(mut self, allowed: bool) -> Keys {
        self.open_allowed = allowed;
        self
    }

    /// Re-reads the keys stored in the database; returns how many there are. On failure the keys
    /// read last stay in force (a database outage must not lock everyone out, nor let anyone in).
    pub async fn reload(&self, store: &Store) -> Result<usize, StorageError> {
        let rows = store.api_key_digests().await?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(role) = Role::parse(&r.role) else {
                tracing::warn!(key = %r.name, role = %r.role, "ignoring a stored API key with an unknown role");
                continue;
            };
            let Ok(digest) = <[u8; 32]>::try_from(r.sha256.as_slice()) else {
                tracing::warn!(key = %r.name, "ignoring a stored API key whose digest is not 32 bytes");
                continue;
            };
            keys.push(Key { name: r.name, role, digest });
        }
        let n = keys.len();
        *self.stored.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(n)
    }

    /// No keys configured or stored, and that may mean open: the API is open.
    pub fn is_open(&self) -> bool {
        self.open_allowed && self.is_empty()
    }

    /// No keys configured or stored.
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty() && self.stored.read().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// The caller holding `presented`, if any. Every key is compared (in constant time), so the
    /// time taken says nothing about which key nearly matched.
    pub fn identify(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        let stored = self.stored.read().unwrap_or_else(|p| p.into_inner());
        for k in self.configured.iter().chain(stored.iter()) {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(Caller { key_name: k.name.clone(), role: k.role.clone() });
            }
        }
        found
    }
}

/// `serve` on a non-loopback address with no key anywhere and no `api.allow_open`.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve on {listen}: it is not a loopback address, and no API key is configured or stored, so \
     anyone who can reach it could enrol, erase and watch. Add an admin key of at least 16 characters: \
     `panoptes keys create --name ops --role admin` (stores it in the database and prints it once), or in \
     the configuration `[[api.keys]]` with name, role = \"admin\" and key_sha256 = the key's SHA-256 in hex \
     (printf %s \"$KEY\" | sha256sum), or in the environment \
     PANOPTES_API__KEYS='[{{name=\"ops\", role=\"admin\", key=\"…\"}}]'. To serve an open API on purpose, \
     set api.allow_open = true (PANOPTES_API__ALLOW_OPEN=true)"
)]
pub struct OpenApiRefused {
    pub listen: String,
}

/// Refuses an API that would be open where that is not allowed (see `ApiConfig::open_allowed`);
/// `stored_keys`: keys in the database.
pub fn check_not_open(config: &crate::ApiConfig, stored_keys: usize) -> Result<(), OpenApiRefused> {
    if config.keys.is_empty() && stored_keys == 0 && !config.open_allowed() {
        return Err(OpenApiRefused { listen: config.listen.clone() });
    }
    Ok(())
}

/// Re-reads stored keys every `every` (keys created or revoked on other nodes).
pub fn spawn_reload(keys: Keys, store: Store, every: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = keys.reload(&store).await {
                tracing::debug!(error = %e, "could not re-read API keys; keeping the last ones read");
            }
        }
    });
}

/// Who asked, for the records of erasures and reviews: the API key's name (never the key), or the
/// client's address on an open API.
pub fn requester(req: &actix_web::HttpRequest) -> String {
    use actix_web::HttpMessage;
    match req.extensions().get::<Caller>() {
        Some(c) => format!("key:{}", c.key_name),
        None => format!("open-api:{}", req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()),
    }
}

/// What a request needs: `None` for open probes, else the least role.
pub fn required_role(method: &Method, path: &str, open_probes: bool) -> Option<Role> {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") && open_probes {
        return None;
    }
    if path == "/api/v1/openapi.json" || path == "/api/v1/access" || crate::console::PATHS.contains(&path) {
        return None;
    }
    // Keys and the audit trail are an administrator's business, reads included.
    if path == "/api/v1/keys" || path.starts_with("/api/v1/keys/") || path == "/api/v1/audit" {
        return Some(Role::Admin);
    }
    // identify, verify and search change nothing: reads, whatever their method.
    if method == Method::GET
        || method == Method::HEAD
        || path == "/api/v1/identify"
        || path == "/api/v1/verify"
        || path == "/api/v1/search"
    {
        Some(Role::Viewer)
    } else {
        Some(Role::Admin)
    }
}

/// The key in `Authorization: Bearer KEY` or `X-API-Key: KEY`.
pub fn presented_key(req: &actix_web::dev::ServiceRequest) -> Option<String> {
    let headers = req.headers();
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    let auth = headers.get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, role: Role, key: &str) -> ApiKeyConfig {
        ApiKeyConfig { name: name.into(), role: Some(role), key: key.into(), key_sha256: String::new() }
    }

    #[test]
    fn keys_are_found_by_value_and_by_digest() {
        let digest = hex::encode(Sha256::digest(b"viewer-key-0123456789"));
        let keys = Keys::from_config(&[
            cfg("ops", Role::Admin, "admin-key-0123456789"),
            ApiKeyConfig { name: "wall".into(), role: Some(Role::Viewer), key: String::new(), key_sha256: digest },
        ])
        .unwrap();
        assert_eq!(keys.identify("admin-key-0123456789").unwrap().role, Role::Admin);
        assert_eq!(keys.identify("viewer-key-0123456789").unwrap().key_name, "wall");
        assert!(keys.identify("admin-key-012345678").is_none());
        assert!(keys.identify("").is_none());
    }

    #[test]
    fn generated_keys_are_random_and_match_their_digest() {
        let (a, da) = generate_key();
        let (b, _) = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with("pnp_") && a.len() == 68);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(a.as_bytes())), da);
    }

    #[test]
    fn bad_key_config_is_refused() {
        assert!(matches!(Keys::from_config(&[cfg("a", Role::Admin, "short")]), Err(KeyConfigError::TooShort(0))));
        let no_role = ApiKeyConfig { key: "x".repeat(20), ..ApiKeyConfig::default() };
        assert!(matches!(Keys::from_config(&[no_role]), Err(KeyConfigError::NoRole(0))));
        let both = ApiKeyConfig { key_sha256: "ab".repeat(32), ..cfg("b", Role::Viewer, &"x".repeat(20)) };
        assert!(matches!(Keys::from_config(&[both]), Err(KeyConfigError::KeyOrDigest(0))));
    }

    #[test]
    fn without_keys_the_api_is_open_only_where_allowed() {
        let none = Keys::from_config(&[]).unwrap();
        assert!(none.is_open() && none.is_empty());
        let locked = none.with_open_allowed(false);
        assert!(!locked.is_open() && locked.is_empty());
        let with_key = Keys::from_config(&[cfg("ops", Role::Admin, "admin-key-0123456789")]).unwrap();
        assert!(!with_key.is_open() && !with_key.is_empty());

        let public = crate::ApiConfig { listen: "0.0.0.0:8080".into(), ..crate::ApiConfig::default() };
        let refused = check_not_open(&public, 0).unwrap_err().to_string();
        assert!(refused.contains("0.0.0.0:8080") && refused.contains("panoptes keys create"), "{refused}");
        assert!(refused.contains("api.allow_open = true") && refused.contains("PANOPTES_API__KEYS"), "{refused}");
        assert!(check_not_open(&public, 1).is_ok(), "a stored key closes it");
        let keyed = crate::ApiConfig { keys: vec![cfg("ops", Role::Admin, "admin-key-0123456789")], ..public.clone() };
        assert!(check_not_open(&keyed, 0).is_ok());
        assert!(check_not_open(&crate::ApiConfig { allow_open: true, ..public }, 0).is_ok());
        assert!(check_not_open(&crate::ApiConfig::default(), 0).is_ok(), "loopback may be open");
    }

    #[test]
    fn reads_need_a_viewer_writes_an_admin_probes_nothing() {
        assert_eq!(required_role(&Method::GET, "/healthz", true), None);
        assert_eq!(required_role(&Method::GET, "/healthz", false), Some(Role::Viewer));
        assert_eq!(required_role(&Method::GET, "/api/v1/cameras", true), Some(Role::Viewer));
        assert_eq!(required_role(&Method::POST, "/api/v1/identify", true), Some(Role::Viewer));
        assert_eq!(required_role(&Method::POST, "/api/v1/verify", true), Some(Role::Viewer));
        assert_eq!(required_role(&Method::POST, "/api/v1/search", true), Some(Role::Viewer));
        assert_eq!(required_role(&Method::DELETE, "/api/v1/cameras/1", true), Some(Role::Admin));
        assert_eq!(required_role(&Method::POST, "/api/v1/persons", true), Some(Role::Admin));
        assert_eq!(required_role(&Method::GET, "/api/v1/keys", true), Some(Role::Admin));
        assert_eq!(required_role(&Method::GET, "/api/v1/access", false), None);
    }
}
