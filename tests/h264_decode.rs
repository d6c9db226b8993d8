//! H.264 clips made by ffmpeg from real face photos, split into access units and decoded by each
//! decoder backend (libavcodec and openh264).

mod common;

use panoptes_engine::decode::{self, Codec, DecoderBackend, VideoDecoder};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::source::annexb::access_units;

const BACKENDS: [DecoderBackend; 2] = [DecoderBackend::Libav, DecoderBackend::Openh264];

fn decoder(backend: DecoderBackend) -> Box<dyn VideoDecoder> {
    decode::open(backend, Codec::H264).expect("decoder")
}

/// Every picture of the clip, in output order, with the tag of the unit it came from.
fn decode_all(backend: DecoderBackend, data: &[u8]) -> (Vec<(u64, YuvFrame)>, Box<dyn VideoDecoder>) {
    let mut dec = decoder(backend);
    let mut frames = Vec::new();
    for (tag, au) in access_units(data).into_iter().enumerate() {
        let out = dec.decode(&au.data, au.is_keyframe, tag as u64, &mut |_, _| true).expect("clean clip decodes");
        frames.extend(out.into_iter().filter_map(|p| Some((p.tag, p.frame?))));
    }
    frames.extend(dec.flush(&mut |_, _| true).unwrap().into_iter().filter_map(|p| Some((p.tag, p.frame?))));
    (frames, dec)
}

#[test]
fn a_baseline_clip_decodes_every_frame_and_its_face_is_recognised() {
    let path = common::h264_clip(&common::photo("obama2.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "baseline");
    let data = std::fs::read(&path).unwrap();
    let aus = access_units(&data);
    assert_eq!(aus.len(), 30);
    assert_eq!(aus.iter().filter(|a| a.is_keyframe).count(), 3);
    let mut p = common::pipeline();
    let still = p.analyze_bytes(&common::photo_bytes("obama2.jpg")).unwrap().remove(0).embedding;
    for backend in BACKENDS {
        let (frames, dec) = decode_all(backend, &data);
        assert_eq!(frames.len(), 30, "{backend:?}");
        assert_eq!(frames[0].1.dimensions(), (1280, 720));
        assert_eq!(dec.stats().corrupt, 0);
        let faces = p.analyze(&frames[15].1.to_rgb()).unwrap();
        assert_eq!(faces.len(), 1);
        let s = panoptes_engine::embed::cosine(&still, &faces[0].embedding);
        assert!(s >= 0.55, "{backend:?}: decoded frame vs still photo: cosine {s:.3}");
    }
}

#[test]
fn high_profile_b_frames_decode_completely_and_libav_tags_each_picture_with_its_unit() {
    let path =
        common::h264_clip(&common::photo("t1.jpg"), 2, &["-profile:v", "high", "-bf", "3", "-g", "20"], "bframes");
    let data = std::fs::read(&path).unwrap();
    for backend in BACKENDS {
        let (frames, dec) = decode_all(backend, &data);
        assert_eq!(frames.len(), 20, "{backend:?} {:?}", dec.stats());
        assert_eq!(dec.stats().corrupt, 0);
    }
    // libavcodec hands pictures out in display order and says which unit each came from: every unit
    // once, though not in decoding order (B-frames).
    let (frames, _) = decode_all(DecoderBackend::Libav, &data);
    let mut tags: Vec<u64> = frames.iter().map(|(t, _)| *t).collect();
    let in_output_order = tags.clone();
    tags.sort_unstable();
    assert_eq!(tags, (0..20).collect::<Vec<_>>());
    assert_ne!(in_output_order, tags, "B-frames reorder the pictures");
}

#[test]
fn only_wanted_pictures_are_copied_out() {
    let path = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "wanted");
    let data = std::fs::read(&path).unwrap();
    for backend in BACKENDS {
        let mut dec = decoder(backend);
        let (mut out, mut copied) = (0, 0);
        for (tag, au) in access_units(&data).into_iter().enumerate() {
            for p in dec.decode(&au.data, au.is_keyframe, tag as u64, &mut |t, _| t % 4 == 0).unwrap() {
                out += 1;
                copied += usize::from(p.frame.is_some());
            }
        }
        assert_eq!((out, copied), (20, 5), "{backend:?}");
    }
}

/// A main stream read for its keyframes only (issue 25): B-frames and a 2 s GOP at 10 fps, 6 s. Each
/// keyframe's picture leaves with it, whole and the same as in a full decode; the other units are not
/// read; leaving the mode resumes at the next keyframe.
#[test]
fn keyframes_only_gives_each_keyframe_picture_at_once_and_reads_nothing_else() {
    let path =
        common::h264_clip(&common::photo("t1.jpg"), 6, &["-profile:v", "main", "-bf", "2", "-g", "20"], "keyonly");
    let data = std::fs::read(&path).unwrap();
    let aus = access_units(&data);
    let keys: Vec<u64> = aus.iter().enumerate().filter(|(_, a)| a.is_keyframe).map(|(i, _)| i as u64).collect();
    assert_eq!(keys, [0, 20, 40], "the clip's GOP");
    let (full, _) = decode_all(DecoderBackend::Libav, &data);
    for backend in BACKENDS {
        let mut dec = decoder(backend);
        dec.set_keyframes_only(true);
        let mut pictures = Vec::new();
        for (tag, au) in aus[..30].iter().enumerate() {
            let out = dec.decode(&au.data, au.is_keyframe, tag as u64, &mut |_, _| true).unwrap();
            assert_eq!(out.len(), usize::from(au.is_keyframe), "{backend:?} unit {tag}: {out:?}");
            pictures.extend(out.into_iter().map(|p| (tag as u64, p)));
        }
        for (tag, p) in &pictures {
            assert_eq!(p.tag, *tag, "{backend:?}: a keyframe's picture carries its unit's tag");
            assert!(!p.damaged, "{backend:?}");
            let reference = &full.iter().find(|(t, _)| t == tag).expect("in the full decode").1;
            assert_eq!(p.frame.as_ref().unwrap().luma(), reference.luma(), "{backend:?} keyframe {tag}");
        }
        let stats = dec.stats();
        assert_eq!((stats.frames, stats.skipped_non_key, stats.corrupt), (2, 28, 0), "{backend:?} {stats:?}");
        // Back to every frame mid-GOP: nothing until the next keyframe (unit 40), then every picture.
        dec.set_keyframes_only(false);
        let mut after = Vec::new();
        for (tag, au) in aus.iter().enumerate().skip(30) {
            after.extend(dec.decode(&au.data, au.is_keyframe, tag as u64, &mut |_, _| true).unwrap());
        }
        after.extend(dec.flush(&mut |_, _| true).unwrap());
        assert_eq!(dec.stats().skipped_before_keyframe, 10, "{backend:?} {:?}", dec.stats());
        assert_eq!(after.len(), 20, "{backend:?}");
        assert!(after.iter().all(|p| !p.damaged && p.frame.is_some()), "{backend:?}");
    }
}

#[test]
fn joining_mid_gop_skips_to_the_next_keyframe() {
    let path = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "midgop");
    let data = std::fs::read(&path).unwrap();
    let aus = access_units(&data);
    for backend in BACKENDS {
        let mut dec = decoder(backend);
        let mut frames = 0;
        for (tag, au) in aus[3..].iter().enumerate() {
            frames += dec.decode(&au.data, au.is_keyframe, tag as u64, &mut |_, _| true).unwrap().len();
        }
        frames += dec.flush(&mut |_, _| true).unwrap().len();
        assert_eq!(dec.stats().skipped_before_keyframe, 7, "{backend:?}");
        assert_eq!(frames, 10, "{backend:?}");
    }
}

#[test]
fn random_bytes_and_damaged_frames_are_errors_not_crashes() {
    let mut seed = 12345u32;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        })
        .collect();
    let path = common::h264_clip(&common::photo("obama.jpg"), 1, &["-profile:v", "baseline", "-g", "10"], "damaged");
    let data = std::fs::read(&path).unwrap();
    for backend in BACKENDS {
        let mut dec = decoder(backend);
        for (tag, au) in access_units(&noise).into_iter().enumerate() {
            let _ = dec.decode(&au.data, true, tag as u64, &mut |_, _| true);
        }
        // a real clip with its P-frames garbled after the keyframe
        let mut dec = decoder(backend);
        for (i, mut au) in access_units(&data).into_iter().enumerate() {
            if i > 0 {
                let n = au.data.len();
                for b in &mut au.data[n / 2..] {
                    *b ^= 0x5a;
                }
            }
            let _ = dec.decode(&au.data, au.is_keyframe, i as u64, &mut |_, _| true);
        }
        assert_eq!(dec.stats().access_units, 10, "{backend:?}");
    }
}
