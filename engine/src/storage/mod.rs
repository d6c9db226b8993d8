//! PostgreSQL storage, the source of truth for persons, embeddings, cameras and detections.

pub mod alert_rules;
pub mod api_keys;
pub mod appearance_faces;
pub mod audit;
pub mod cameras;
pub mod conninfo;
pub mod detections;
pub mod embeddings;
pub mod gallery_model;
pub mod leases;
pub mod migrations;
pub mod persons;
pub mod reviews;
pub mod tls;
pub mod unknowns;

use std::sync::Arc;
use std::time::Duration;

use crate::error_chain::error_chain;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};

pub use api_keys::StoredApiKey;
pub use audit::AuditEntry;
pub use cameras::{Camera, CameraOptions, CameraPatch, NewCamera};
pub use conninfo::ConnInfo;
pub use detections::{
    AppearanceEvidence, Detection, DetectionCursor, DetectionFilter, ExpiredDetection, ExpiredScope, NewDetection,
};
pub use embeddings::{EmbeddingRow, NewEmbedding};
pub use gallery_model::{EmbeddingCoverage, GalleryModelState, PhotoToEmbed, ReembedFailure, ReembedLock};
pub use persons::Person;
pub use reviews::{ReviewRecord, StoredFace};
pub use tls::{DatabaseTls, SslMode, TlsSetupError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database TLS settings")]
    Tls(#[source] TlsSetupError),
    #[error("database error while trying to {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl StorageError {
    /// The database refused the statement itself (bad data, a broken constraint, a missing
    /// privilege): sending it again cannot succeed. Anything else — no connection, a server shutting
    /// down, a serialization conflict — may pass on a retry.
    pub fn is_permanent(&self) -> bool {
        let StorageError::Query { source, .. } = self else { return false };
        // SQLSTATE classes: 22 data exception, 23 integrity constraint violation, 42 syntax error or
        // access rule violation, 44 WITH CHECK OPTION violation.
        source.code().is_some_and(|c| matches!(&c.code()[..2], "22" | "23" | "42" | "44"))
    }

    /// The statement broke a unique constraint (a duplicate name, for instance).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StorageError::Query { source, .. }
            if source.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION))
    }
}

/// Connections of the pool: open and lent out, open and idle, and requests waiting for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    pub in_use: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// A pool of connections to the Panoptes database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The servers of the URL and the sslmode, named in connection errors.
    servers: Arc<str>,
}

impl Store {
    /// Builds the pool (no connection is made yet).
    pub fn new(url: &str, pool_size: usize) -> Result<Store, StorageError> {
        let info = ConnInfo::parse(url)?;
        let tls = info.tls().map_err(StorageError::Tls)?;
        let manager =
            Manager::from_config(info.config().clone(), tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StorageError::BadUrl(e.to_string()))?;
        Ok(Store { pool, servers: info.servers().into() })
    }

    /// How the connection pool is used right now.
    pub fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            in_use: s.size.saturating_sub(s.available),
            idle: s.available,
            waiting: s.waiting,
        }
    }

    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Store, StorageError> {
        let store = Store::new(url, pool_size)?;
        let mut client = store.client().await?;
        let applied = migrations::migrate(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied database migrations");
        }
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(|e| match e {
            // tokio-postgres' errors do not say which server refused (or answered nothing).
            PoolError::Backend(e) => StorageError::Unavailable(format!("{}: {}", self.servers, error_chain(&e))),
            e => StorageError::Unavailable(e.to_string()),
        })
    }

    /// Closes every connection; later calls fail as if the database were down.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.simple_query("SELECT 1").await.map_err(|source| StorageError::Query { context: "ping", source })?;
        Ok(())
    }
}

/// One connection outside the pool (administration, tests, tools), through the same TLS connector as
/// the pool's; its connection task runs on the current tokio runtime until the client is dropped.
pub async fn connect_client(url: &str) -> Result<tokio_postgres::Client, StorageError> {
    let info = ConnInfo::parse(url)?;
    let tls = info.tls().map_err(StorageError::Tls)?;
    let (client, connection) = info
        .config()
        .connect(tls)
        .await
        .map_err(|e| StorageError::Unavailable(format!("{}: {}", info.servers(), error_chain(&e))))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}
