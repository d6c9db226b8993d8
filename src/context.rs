//! What every command needs: the loaded models, the database, and the gallery built from it.

use std::sync::{Arc, RwLock};

use panoptes_engine::embed::ModelId;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::gallery_sync::read_gallery;
use panoptes_engine::pipeline::FacePipeline;
use panoptes_engine::reembed::serving_model;
use panoptes_engine::runtime::{ModelError, Runtime};
use panoptes_engine::storage::{StorageError, Store};

use crate::settings::{Settings, SettingsError};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error("connecting to the database at {url}")]
    Database {
        url: String,
        #[source]
        source: StorageError,
    },
    #[error("reading the gallery")]
    Gallery(#[source] StorageError),
}

pub struct Context {
    pub settings: Settings,
    /// The embedder the configuration names (`pipeline.embedder`); the gallery may still serve with
    /// another until a switch to this one completes.
    pub configured: ModelId,
    /// Embeds with the gallery's model.
    pub pipeline: FacePipeline,
    pub store: Store,
    pub gallery: Arc<RwLock<Gallery>>,
}

/// Loads ONNX Runtime and the models (failing fast with the missing file's name).
pub fn load_pipeline(settings: &Settings) -> Result<FacePipeline, ModelError> {
    let runtime = Runtime::load(&settings.models.onnxruntime)?;
    FacePipeline::load(&runtime, &settings.models.dir, &settings.pipeline)
}

impl Context {
    pub async fn open(settings: Settings) -> Result<Context, ContextError> {
        let mut pipeline = load_pipeline(&settings)?;
        let configured = pipeline.model().clone();
        let url = settings.database_url()?;
        let store = Store::connect(&url, settings.database.pool_size)
            .await
            .map_err(|source| ContextError::Database { url: redact_url(&url), source })?;
        let info = serving_model(&store, &mut pipeline).await.map_err(ContextError::Gallery)?;
        let gallery = read_gallery(&store, &info).await.map_err(ContextError::Gallery)?;
        tracing::info!(embeddings = gallery.len(), model = %gallery.model(), "gallery loaded");
        Ok(Context { settings, configured, pipeline, store, gallery: Arc::new(RwLock::new(gallery)) })
    }
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
        assert_eq!(redact_url("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(redact_url("host=/tmp"), "host=/tmp");
    }
}
