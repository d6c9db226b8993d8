//! The pure pipeline parts of Panoptes: video sources and decoding, image input, face detection,
//! alignment, embedding, the in-memory gallery index and PostgreSQL storage. Nothing here knows about actors or HTTP.

pub mod alerts;
pub mod align;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod enrollment;
pub mod erasure;
pub mod error_chain;
pub mod evaluation;
pub mod frame;
pub mod gallery;
pub mod gallery_sync;
pub mod geometry;
pub mod image_input;
pub mod image_resize;
pub mod motion;
pub mod pipeline;
pub mod reembed;
pub mod retention;
pub mod review;
pub mod runtime;
pub mod search;
pub mod similarity;
pub mod snapshot;
pub mod source;
pub mod storage;
pub mod stream_pair;
pub mod track;
pub mod unknowns;
