//! The snapshot directory of a backup: its files copied byte for byte (encrypted ones stay encrypted)
//! and summed up as one SHA-256 over every file's relative path, size and SHA-256, so a restore can
//! tell a damaged or incomplete copy before it writes anything.

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

/// Count, size and digest of a set of files.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeSummary {
    pub files: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// The regular files under `root`, as paths relative to it, sorted; `root` missing: none. Anything
/// else (links, sockets) is returned apart, to be reported.
pub fn list(root: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut other = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = root.join(&rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let kind = entry.file_type().with_context(|| format!("reading {}", entry.path().display()))?;
            let path = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                files.push(path);
            } else {
                other.push(path);
            }
        }
    }
    files.sort();
    Ok((files, other))
}

/// Builds the digest of a tree file by file, in the order of [`list`].
#[derive(Default)]
struct TreeDigest {
    hasher: Sha256,
    files: u64,
    bytes: u64,
}

impl TreeDigest {
    fn add(&mut self, rel: &Path, bytes: u64, file_sha256: &[u8]) {
        self.hasher.update(rel.as_os_str().as_bytes());
        self.hasher.update(format!("\0{bytes}\0{}\n", hex::encode(file_sha256)));
        self.files += 1;
        self.bytes += bytes;
    }

    fn finish(self) -> TreeSummary {
        TreeSummary { files: self.files, bytes: self.bytes, sha256: hex::encode(self.hasher.finalize()) }
    }
}

/// Reads `input` to its end, writing it to `to` when given; (bytes, SHA-256).
fn stream(mut input: impl Read, mut to: Option<&mut std::fs::File>) -> std::io::Result<(u64, Vec<u8>)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(out) = to.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    Ok((total, hasher.finalize().to_vec()))
}

/// SHA-256 (hex) and size of one file.
pub fn file_sha256(path: &Path) -> Result<(u64, String)> {
    let (bytes, sha) = std::fs::File::open(path)
        .and_then(|f| stream(f, None))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((bytes, hex::encode(sha)))
}

/// The digest of `files` (relative to `root`) without copying them.
pub fn summarize(root: &Path, files: &[PathBuf]) -> Result<TreeSummary> {
    let mut digest = TreeDigest::default();
    for rel in files {
        let path = root.join(rel);
        let (bytes, sha) = std::fs::File::open(&path)
            .and_then(|f| stream(f, None))
            .with_context(|| format!("reading {}", path.display()))?;
        digest.add(rel, bytes, &sha);
    }
    Ok(digest.finish())
}

/// Copies `files` from `from` to `to` (directories made as needed) and sums up what was copied. With
/// `skip_vanished`, a file deleted since it was listed (the engine's retention at work during a
/// backup) is left out instead of failing the copy; the count of those is returned too.
pub fn copy(from: &Path, to: &Path, files: &[PathBuf], skip_vanished: bool) -> Result<(TreeSummary, u64)> {
    let mut digest = TreeDigest::default();
    let mut vanished = 0;
    for rel in files {
        let source = from.join(rel);
        let target = to.join(rel);
        let input = match std::fs::File::open(&source) {
            Ok(f) => f,
            Err(e) if skip_vanished && e.kind() == std::io::ErrorKind::NotFound => {
                vanished += 1;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", source.display())),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut out = std::fs::File::create(&target).with_context(|| format!("creating {}", target.display()))?;
        let (bytes, sha) = stream(input, Some(&mut out))
            .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
        out.sync_all().with_context(|| format!("writing {}", target.display()))?;
        digest.add(rel, bytes, &sha);
    }
    Ok((digest.finish(), vanished))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_sums_up_as_its_source_and_any_change_shows() {
        let base = std::env::temp_dir().join(format!("panoptes-tree-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(from.join("2026-12-05/cam-1")).unwrap();
        std::fs::write(from.join("2026-12-05/cam-1/a-face.jpg"), b"face").unwrap();
        std::fs::write(from.join("2026-12-05/cam-1/a-frame.enc"), b"\x00\x01frame").unwrap();
        let (files, other) = list(&from).unwrap();
        assert_eq!(files.len(), 2);
        assert!(other.is_empty());
        let (copied, vanished) = copy(&from, &to, &files, false).unwrap();
        assert_eq!((copied.files, copied.bytes, vanished), (2, 11, 0));
        assert_eq!(summarize(&to, &list(&to).unwrap().0).unwrap(), copied);
        std::fs::write(to.join("2026-12-05/cam-1/a-face.jpg"), b"fac3").unwrap();
        assert_ne!(summarize(&to, &files).unwrap().sha256, copied.sha256, "same size, other bytes");
        assert_eq!(list(&base.join("missing")).unwrap().0.len(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
