//! What every command needs: the loaded models, the database, and the gallery built from it.

use std::sync::{Arc, RwLock};

use anyhow::{Context as _, Result};
use panoptes_engine::enrollment::load_gallery;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::pipeline::FacePipeline;
use panoptes_engine::runtime::Runtime;
use panoptes_engine::storage::Store;

use crate::settings::Settings;

pub struct Context {
    pub settings: Settings,
    pub pipeline: FacePipeline,
    pub store: Store,
    pub gallery: Arc<RwLock<Gallery>>,
}

/// Loads ONNX Runtime and the models (failing fast with the missing file's name).
pub fn load_pipeline(settings: &Settings) -> Result<FacePipeline> {
    let runtime = Runtime::load(&settings.models.onnxruntime)?;
    let pipeline = FacePipeline::load(&runtime, &settings.models.dir, &settings.pipeline)?;
    Ok(pipeline)
}

impl Context {
    pub async fn open(settings: Settings) -> Result<Context> {
        let pipeline = load_pipeline(&settings)?;
        let url = settings.database_url()?;
        let store = Store::connect(&url, settings.database.pool_size)
            .await
            .with_context(|| format!("connecting to the database at {}", redact_url(&url)))?;
        let gallery = load_gallery(&store, &pipeline).await?;
        tracing::info!(embeddings = gallery.len(), model = %gallery.model(), "gallery loaded");
        Ok(Context { settings, pipeline, store, gallery: Arc::new(RwLock::new(gallery)) })
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
