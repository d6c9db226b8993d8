//! Where video comes from. Today: Annex-B H.264 byte streams (files, camera dumps).

pub mod annexb;
