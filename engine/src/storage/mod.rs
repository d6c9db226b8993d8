//! PostgreSQL storage, the source of truth for persons, embeddings, cameras and detections.

pub mod api_keys;
pub mod cameras;
pub mod detections;
pub mod embeddings;
pub mod leases;
pub mod migrations;
pub mod persons;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use api_keys::StoredApiKey;
pub use cameras::{Camera, CameraOptions, CameraPatch, NewCamera};
pub use detections::{Detection, DetectionCursor, DetectionFilter, ExpiredDetection, ExpiredScope, NewDetection};
pub use embeddings::{EmbeddingRow, NewEmbedding};
pub use persons::Person;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
}

impl Store {
    /// Builds the pool (no connection is made yet).
    pub fn new(url: &str, pool_size: usize) -> Result<Store, StorageError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| StorageError::BadUrl(e.to_string()))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StorageError::BadUrl(e.to_string()))?;
        Ok(Store { pool })
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
        self.pool.get().await.map_err(|e| StorageError::Unavailable(e.to_string()))
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
