//! Supervised actix actors that wire the engine into the streaming pipeline. Today: the camera actor
//! (connect, stream, detect stalls, reconnect with backoff). Decoder, inference, matcher and
//! scheduler actors build on the same messages.

pub mod camera;
pub mod messages;
