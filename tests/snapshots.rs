//! Detection snapshots on a real photo: plain and AES-256-GCM-encrypted storage, refusal of wrong keys
//! and of paths outside the snapshot tree, and retention by day.

mod common;

use chrono::{TimeZone, Utc};
use panoptes_engine::snapshot::{SnapshotConfig, SnapshotError, SnapshotKind, SnapshotStore};

fn store(dir: &std::path::Path, key: &str) -> SnapshotStore {
    SnapshotStore::new(&SnapshotConfig {
        dir: common::path_str(dir),
        encryption_key: key.into(),
        retention_days: 7,
        ..SnapshotConfig::default()
    })
    .unwrap()
}

#[test]
fn snapshots_round_trip_plain_and_encrypted() {
    let mut p = common::pipeline();
    let image = p.decode(&common::photo_bytes("obama.jpg")).unwrap();
    let face = p.analyze(&image).unwrap().remove(0).face.bbox;
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 2).unwrap();

    let plain_dir = common::temp_dir("snap-plain");
    let plain = store(&plain_dir, "");
    let stem = plain.write(3, at, &image, &face).unwrap();
    assert!(stem.starts_with("2026-11-22/cam-3/101502.000-"), "{stem}");
    let jpeg = plain.read(&stem, SnapshotKind::Face).unwrap();
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    assert_eq!(std::fs::read(plain_dir.join(format!("{stem}.face.jpg"))).unwrap(), jpeg);

    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let enc_dir = common::temp_dir("snap-enc");
    let enc = store(&enc_dir, key);
    let stem = enc.write(3, at, &image, &face).unwrap();
    let sealed = std::fs::read(enc_dir.join(format!("{stem}.frame.jpg.enc"))).unwrap();
    assert!(sealed.starts_with(b"PANOPTES-AESGCM1"));
    let frame = p.decode(&enc.read(&stem, SnapshotKind::Frame).unwrap()).unwrap();
    assert_eq!(frame.width().max(frame.height()), 640, "context frame downscaled to 640 px");

    // Another key cannot read it, nor can a store without a key; a flipped byte is detected.
    let other = store(&enc_dir, &"ab".repeat(32));
    assert!(matches!(other.read(&stem, SnapshotKind::Frame), Err(SnapshotError::Decrypt(_))));
    assert!(matches!(store(&enc_dir, "").read(&stem, SnapshotKind::Frame), Err(SnapshotError::NoKey(_))));
    let mut tampered = sealed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(enc_dir.join(format!("{stem}.frame.jpg.enc")), tampered).unwrap();
    assert!(matches!(enc.read(&stem, SnapshotKind::Frame), Err(SnapshotError::Decrypt(_))));

    assert!(matches!(enc.read("../../etc/passwd", SnapshotKind::Face), Err(SnapshotError::BadReference(_))));
}

#[test]
fn bad_keys_are_refused_with_their_length() {
    for key in ["abc", &"zz".repeat(32), &"ab".repeat(16)] {
        let cfg = SnapshotConfig { encryption_key: key.to_string(), ..SnapshotConfig::default() };
        match SnapshotStore::new(&cfg) {
            Err(SnapshotError::BadKey(n)) => assert_eq!(n, key.len()),
            other => panic!("key {key:?} gave {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn retention_deletes_whole_expired_days_only() {
    let mut p = common::pipeline();
    let image = p.decode(&common::photo_bytes("obama.jpg")).unwrap();
    let face = p.analyze(&image).unwrap().remove(0).face.bbox;
    let dir = common::temp_dir("snap-retention");
    let s = store(&dir, "");
    let old = s.write(1, Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap(), &image, &face).unwrap();
    let recent = s.write(1, Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap(), &image, &face).unwrap();
    std::fs::create_dir_all(dir.join("not-a-day")).unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    // The store's own retention, as a retention sweep applies it (rows kept for ever here).
    let oldest = panoptes_engine::retention::oldest_picture_day(s.retention_days(), None, today).unwrap();
    assert_eq!(s.purge_days_before(oldest).unwrap(), 1);
    assert!(s.read(&old, SnapshotKind::Face).is_err());
    assert!(s.read(&recent, SnapshotKind::Face).is_ok());
    assert!(dir.join("not-a-day").is_dir(), "directories that are not days are left alone");
}
