//! Detection snapshots on disk: a face crop and a downscaled context frame per detection, as JPEG,
//! optionally encrypted at rest with AES-256-GCM, deleted with their detection rows (`crate::retention`).
//!
//! Layout: `<dir>/<YYYY-MM-DD>/cam-<id>/<HHMMSS.mmm>-<n>.{face,frame}.jpg` (`.jpg.enc` when encrypted).
//! The detections row stores the stem relative to `<dir>` (`2026-11-22/cam-3/101502.250-17`), so the
//! directory can move and day directories can be deleted whole when they expire.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use chrono::{DateTime, NaiveDate, Utc};
use image::RgbImage;
use serde::Deserialize;

use crate::geometry::BBox;

/// Encrypted files start with this, then a 12-byte nonce, then the ciphertext and its tag.
const MAGIC: &[u8; 16] = b"PANOPTES-AESGCM1";
const NONCE_LEN: usize = 12;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    pub enabled: bool,
    pub dir: String,
    /// Pictures are deleted with their detection rows (`storage.*_retention_days`); a value above 0
    /// also deletes whole day directories older than this many days, rows or not (pictures kept for
    /// less time than the rows). 0: as long as the rows.
    pub retention_days: u32,
    /// The context frame is downscaled so that its longest side is at most this.
    pub context_max_side: u32,
    pub jpeg_quality: u8,
    /// 64 hex characters (32 bytes) to encrypt snapshots with AES-256-GCM; empty stores plain JPEG.
    pub encryption_key: String,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "data/snapshots".into(),
            retention_days: 0,
            context_max_side: 640,
            jpeg_quality: 80,
            encryption_key: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshots.encryption_key must be 64 hex characters (32 bytes), got {0} characters")]
    BadKey(usize),
    #[error("snapshot {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("snapshot encoding failed: {0}")]
    Encode(String),
    #[error("snapshot reference {0:?} is not a valid snapshot path")]
    BadReference(String),
    #[error("snapshot {0} is encrypted but no encryption key is configured")]
    NoKey(PathBuf),
    #[error("snapshot {0} could not be decrypted (wrong key or tampered file)")]
    Decrypt(PathBuf),
}

/// Which of a detection's two pictures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotKind {
    Face,
    Frame,
}

impl SnapshotKind {
    fn suffix(self) -> &'static str {
        match self {
            SnapshotKind::Face => "face",
            SnapshotKind::Frame => "frame",
        }
    }
}

pub struct SnapshotStore {
    dir: PathBuf,
    cipher: Option<Aes256Gcm>,
    context_max_side: u32,
    quality: u8,
    retention_days: u32,
    sequence: AtomicU64,
}

impl SnapshotStore {
    pub fn new(config: &SnapshotConfig) -> Result<Self, SnapshotError> {
        let cipher = match config.encryption_key.trim() {
            "" => None,
            hex_key => {
                let bytes = hex::decode(hex_key).map_err(|_| SnapshotError::BadKey(hex_key.len()))?;
                if bytes.len() != 32 {
                    return Err(SnapshotError::BadKey(hex_key.len()));
                }
                Some(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)))
            }
        };
        Ok(Self {
            dir: PathBuf::from(&config.dir),
            cipher,
            context_max_side: config.context_max_side.max(64),
            quality: config.jpeg_quality.clamp(10, 100),
            retention_days: config.retention_days,
            sequence: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Writes the face crop (the box with a margin) and the downscaled frame; returns the stem to
    /// store in the detections row.
    pub fn write(
        &self,
        camera_id: i64,
        at: DateTime<Utc>,
        frame: &RgbImage,
        face: &BBox,
    ) -> Result<String, SnapshotError> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{}/cam-{camera_id}/{}-{n}", at.format("%Y-%m-%d"), at.format("%H%M%S%.3f"));
        let folder = self.dir.join(format!("{}/cam-{camera_id}", at.format("%Y-%m-%d")));
        std::fs::create_dir_all(&folder).map_err(|source| SnapshotError::Io { path: folder.clone(), source })?;
        let crop = face_crop(frame, face);
        self.put(&stem, SnapshotKind::Face, &self.jpeg(&crop)?)?;
        let (context, _) =
            crate::image_resize::fit_within(frame, self.context_max_side).map_err(SnapshotError::Encode)?;
        self.put(&stem, SnapshotKind::Frame, &self.jpeg(&context)?)?;
        Ok(stem)
    }

    /// Like [`write`](Self::write), from a decoded video frame: the face crop is converted from the
    /// frame's YUV on its own, the whole frame only for the downscaled context picture.
    pub fn write_frame(
        &self,
        camera_id: i64,
        at: DateTime<Utc>,
        frame: &crate::frame::YuvFrame,
        face: &BBox,
    ) -> Result<String, SnapshotError> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{}/cam-{camera_id}/{}-{n}", at.format("%Y-%m-%d"), at.format("%H%M%S%.3f"));
        let folder = self.dir.join(format!("{}/cam-{camera_id}", at.format("%Y-%m-%d")));
        std::fs::create_dir_all(&folder).map_err(|source| SnapshotError::Io { path: folder.clone(), source })?;
        let (x0, y0, w, h) = crop_rect(frame.width(), frame.height(), face);
        self.put(&stem, SnapshotKind::Face, &self.jpeg(&frame.region_rgb(x0, y0, w, h))?)?;
        let (context, _) =
            crate::image_resize::fit_within(&frame.to_rgb(), self.context_max_side).map_err(SnapshotError::Encode)?;
        self.put(&stem, SnapshotKind::Frame, &self.jpeg(&context)?)?;
        Ok(stem)
    }

    /// Deletes a snapshot's pictures (one superseded by a better face of the same appearance).
    pub fn remove(&self, stem: &str) -> Result<(), SnapshotError> {
        self.remove_pictures(stem, &[SnapshotKind::Face, SnapshotKind::Frame]).map(|_| ())
    }

    /// Deletes the given pictures of a snapshot (plain or encrypted); answers whether any file was
    /// there. A picture already gone is not an error.
    pub fn remove_pictures(&self, stem: &str, kinds: &[SnapshotKind]) -> Result<bool, SnapshotError> {
        check_stem(stem)?;
        let mut removed = false;
        for &kind in kinds {
            for encrypted in [true, false] {
                let path = self.path(stem, kind, encrypted);
                match std::fs::remove_file(&path) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(SnapshotError::Io { path, source }),
                }
            }
        }
        Ok(removed)
    }

    /// The JPEG bytes of one picture of a stored snapshot (decrypted when needed).
    pub fn read(&self, stem: &str, kind: SnapshotKind) -> Result<Vec<u8>, SnapshotError> {
        check_stem(stem)?;
        for encrypted in [true, false] {
            let path = self.path(stem, kind, encrypted);
            match std::fs::read(&path) {
                Ok(bytes) if encrypted => return self.decrypt(&path, &bytes),
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(SnapshotError::Io { path, source }),
            }
        }
        let path = self.path(stem, kind, self.encrypted());
        Err(SnapshotError::Io { path, source: std::io::ErrorKind::NotFound.into() })
    }

    /// `snapshots.retention_days` (0: pictures are kept as long as their detection rows).
    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// Deletes the day directories of days before `oldest_kept`; returns how many were removed.
    pub fn purge_days_before(&self, oldest_kept: NaiveDate) -> Result<usize, SnapshotError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => return Err(SnapshotError::Io { path: self.dir.clone(), source }),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(day) = name.to_str().and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok()) else {
                continue; // not ours
            };
            if day < oldest_kept {
                let path = entry.path();
                std::fs::remove_dir_all(&path).map_err(|source| SnapshotError::Io { path, source })?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn path(&self, stem: &str, kind: SnapshotKind, encrypted: bool) -> PathBuf {
        let ext = if encrypted { "jpg.enc" } else { "jpg" };
        self.dir.join(format!("{stem}.{}.{ext}", kind.suffix()))
    }

    fn put(&self, stem: &str, kind: SnapshotKind, jpeg: &[u8]) -> Result<(), SnapshotError> {
        let path = self.path(stem, kind, self.cipher.is_some());
        let bytes = match &self.cipher {
            None => jpeg.to_vec(),
            Some(cipher) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let sealed = cipher.encrypt(&nonce, jpeg).map_err(|e| SnapshotError::Encode(e.to_string()))?;
                let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
                out.extend_from_slice(MAGIC);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                out
            }
        };
        std::fs::write(&path, bytes).map_err(|source| SnapshotError::Io { path, source })
    }

    fn decrypt(&self, path: &Path, bytes: &[u8]) -> Result<Vec<u8>, SnapshotError> {
        let cipher = self.cipher.as_ref().ok_or_else(|| SnapshotError::NoKey(path.to_path_buf()))?;
        if bytes.len() < MAGIC.len() + NONCE_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::Decrypt(path.to_path_buf()));
        }
        let nonce = Nonce::from_slice(&bytes[MAGIC.len()..MAGIC.len() + NONCE_LEN]);
        cipher.decrypt(nonce, &bytes[MAGIC.len() + NONCE_LEN..]).map_err(|_| SnapshotError::Decrypt(path.to_path_buf()))
    }

    fn jpeg(&self, image: &RgbImage) -> Result<Vec<u8>, SnapshotError> {
        crate::image_resize::jpeg(image, self.quality).map_err(SnapshotError::Encode)
    }
}

/// Stems come back from the database and the API: only our own shape, never `..` or absolute paths.
fn check_stem(stem: &str) -> Result<(), SnapshotError> {
    let path = Path::new(stem);
    let ok = !stem.is_empty()
        && stem.len() < 200
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || "-./".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::BadReference(stem.to_string()))
    }
}

/// The face box grown by 30 % on each side, clamped to the frame.
fn face_crop(frame: &RgbImage, face: &BBox) -> RgbImage {
    let (x0, y0, w, h) = crop_rect(frame.width(), frame.height(), face);
    image::imageops::crop_imm(frame, x0, y0, w, h).to_image()
}

/// (x, y, width, height) of the face box grown by 30 % on each side, clamped to a frame of `fw`×`fh`.
fn crop_rect(fw: u32, fh: u32, face: &BBox) -> (u32, u32, u32, u32) {
    let (w, h) = (fw as f32, fh as f32);
    let (mx, my) = (face.width * 0.3, face.height * 0.3);
    let x0 = (face.x - mx).clamp(0.0, w - 1.0) as u32;
    let y0 = (face.y - my).clamp(0.0, h - 1.0) as u32;
    let x1 = (face.x + face.width + mx).clamp(x0 as f32 + 1.0, w) as u32;
    let y1 = (face.y + face.height + my).clamp(y0 as f32 + 1.0, h) as u32;
    (x0, y0, x1 - x0, y1 - y0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_outside_the_snapshot_tree_are_refused() {
        assert!(check_stem("2026-11-22/cam-3/101502.250-17").is_ok());
        for bad in ["", "../etc/passwd", "/etc/passwd", "2026-11-22/../../x", "a b", "a\\b"] {
            assert!(check_stem(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn face_crops_stay_inside_the_frame() {
        let frame = RgbImage::new(100, 50);
        let crop = face_crop(&frame, &BBox { x: 90.0, y: 40.0, width: 30.0, height: 30.0 });
        assert!(crop.width() >= 1 && crop.width() <= 100 && crop.height() <= 50);
        let crop = face_crop(&frame, &BBox { x: -20.0, y: -20.0, width: 10.0, height: 10.0 });
        assert!(crop.width() >= 1 && crop.height() >= 1);
    }
}
