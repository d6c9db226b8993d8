//! The Panoptes engine as a library: its configuration, what every command loads (models, database,
//! gallery), and the one place where the streaming engine and its API are assembled. The `panoptes`
//! binary, `panoptes bench` and the integration tests all start the engine through [`assembly`].

pub mod assembly;
pub mod context;
pub mod settings;
pub mod throwaway_database;
pub mod video_eval;

pub use assembly::{Engine, EngineError};
pub use context::{Context, ContextError};
pub use settings::{Settings, SettingsError};
