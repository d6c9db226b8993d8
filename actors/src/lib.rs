//! Supervised actix actors that wire the engine into the streaming pipeline (cameras, decoders,
//! inference workers, matcher, scheduler). Empty until the streaming engine lands: the still-image
//! pipeline is driven directly by the binary.
