//! A database of its own on the configured PostgreSQL server, for a command that runs the whole engine
//! and must leave nothing behind (`panoptes bench`, `panoptes eval video`): created empty, dropped at
//! the end.

#[derive(Debug, thiserror::Error)]
pub enum ThrowawayDatabaseError {
    #[error("connecting to {url}")]
    Connect {
        url: String,
        #[source]
        source: panoptes_engine::storage::StorageError,
    },
    #[error("creating database {name}: the command runs the engine in a throwaway database and needs CREATE DATABASE rights")]
    Create {
        name: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the database URL {0:?} is not a postgresql:// URL")]
    Url(String),
}

pub struct ThrowawayDatabase {
    admin_url: String,
    name: String,
}

impl ThrowawayDatabase {
    /// Creates `<prefix>_<pid>_<n>` (`n` counts this process's throwaway databases, so evaluations
    /// running side by side in one process each have their own; a leftover of the same name is
    /// dropped first); answers it and its URL.
    pub async fn create(server_url: &str, prefix: &str) -> Result<(ThrowawayDatabase, String), ThrowawayDatabaseError> {
        // Over TLS when the URL asks for it (sslmode), like every connection of the engine.
        let client = panoptes_engine::storage::connect_client(server_url).await.map_err(|source| {
            ThrowawayDatabaseError::Connect { url: crate::context::redact_url(server_url), source }
        })?;
        static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        let create = |source| ThrowawayDatabaseError::Create { name: name.clone(), source };
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.map_err(create)?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.map_err(create)?;
        let url = with_database(server_url, &name)?;
        Ok((ThrowawayDatabase { admin_url: server_url.to_string(), name }, url))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn drop(self) {
        if let Ok(client) = panoptes_engine::storage::connect_client(&self.admin_url).await {
            if let Err(e) = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await {
                eprintln!("could not drop the throwaway database {}: {e}", self.name);
            }
        }
    }
}

/// `url` with its database name replaced (postgresql://…/name?params), its parameters (sslmode,
/// sslrootcert, …) kept.
pub fn with_database(url: &str, name: &str) -> Result<String, ThrowawayDatabaseError> {
    let bad = || ThrowawayDatabaseError::Url(crate::context::redact_url(url));
    url.parse::<tokio_postgres::Config>().map_err(|_| bad())?;
    let Some(scheme_end) = url.find("://") else { return Err(bad()) };
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let base = match head[scheme_end + 3..].find('/') {
        Some(slash) => &head[..scheme_end + 3 + slash],
        None => head,
    };
    Ok(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_parameters_kept() {
        assert_eq!(with_database("postgresql://u@h:5/panoptes", "b").unwrap(), "postgresql://u@h:5/b");
        assert_eq!(with_database("postgresql://u@h:5", "b").unwrap(), "postgresql://u@h:5/b");
        assert_eq!(
            with_database("postgresql://u@h/x?sslmode=disable", "b").unwrap(),
            "postgresql://u@h/b?sslmode=disable"
        );
    }
}
