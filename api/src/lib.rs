//! The actix-web control surface of Panoptes. This first cut serves liveness and readiness; the
//! versioned `/api/v1` resources build on the same state and error type.

pub mod error;
pub mod health;

use std::sync::{Arc, RwLock};

use actix_web::web;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::storage::Store;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub gallery: Arc<RwLock<Gallery>>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz).service(health::readyz);
}
