//! H.264 clips made by ffmpeg from real face photos, split into access units and decoded by openh264.

mod common;

use panoptes_engine::decode::h264::H264Decoder;
use panoptes_engine::source::annexb::access_units;

fn decode_all(data: &[u8]) -> (Vec<image::RgbImage>, H264Decoder) {
    let mut dec = H264Decoder::new().unwrap();
    let mut frames = Vec::new();
    for au in access_units(data) {
        if let Some(f) = dec.decode(&au.data, au.is_keyframe).expect("clean clip decodes") {
            frames.push(f);
        }
    }
    frames.extend(dec.flush().unwrap());
    (frames, dec)
}

#[test]
fn a_baseline_clip_decodes_every_frame_and_its_face_is_recognised() {
    let path = common::h264_clip(&common::photo("obama2.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "baseline");
    let data = std::fs::read(&path).unwrap();
    let aus = access_units(&data);
    assert_eq!(aus.len(), 30);
    assert_eq!(aus.iter().filter(|a| a.is_keyframe).count(), 3);
    let (frames, dec) = decode_all(&data);
    assert_eq!(frames.len(), 30);
    assert_eq!(frames[0].dimensions(), (1280, 720));
    assert_eq!(dec.stats().corrupt, 0);

    let mut p = common::pipeline();
    let still = p.analyze_bytes(&common::photo_bytes("obama2.jpg")).unwrap().remove(0).embedding;
    let faces = p.analyze(&frames[15]).unwrap();
    assert_eq!(faces.len(), 1);
    let s = panoptes_engine::embed::cosine(&still, &faces[0].embedding);
    assert!(s >= 0.55, "decoded frame vs still photo: cosine {s:.3}");
}

#[test]
fn high_profile_b_frames_decode_completely_with_no_flush() {
    let path =
        common::h264_clip(&common::photo("t1.jpg"), 2, &["-profile:v", "high", "-bf", "3", "-g", "20"], "bframes");
    let (frames, dec) = decode_all(&std::fs::read(&path).unwrap());
    assert_eq!(frames.len(), 20, "{:?}", dec.stats());
    assert_eq!(dec.stats().corrupt, 0);
}

#[test]
fn joining_mid_gop_skips_to_the_next_keyframe() {
    let path = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "midgop");
    let data = std::fs::read(&path).unwrap();
    let aus = access_units(&data);
    let mut dec = H264Decoder::new().unwrap();
    let mut frames = 0;
    for au in &aus[3..] {
        if dec.decode(&au.data, au.is_keyframe).unwrap().is_some() {
            frames += 1;
        }
    }
    assert_eq!(dec.stats().skipped_before_keyframe, 7);
    assert_eq!(frames, 10);
}

#[test]
fn random_bytes_and_damaged_frames_are_errors_not_crashes() {
    let mut dec = H264Decoder::new().unwrap();
    let mut seed = 12345u32;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        })
        .collect();
    for au in access_units(&noise) {
        let _ = dec.decode(&au.data, true);
    }
    // a real clip with its P-frames garbled after the keyframe
    let path = common::h264_clip(&common::photo("obama.jpg"), 1, &["-profile:v", "baseline", "-g", "10"], "damaged");
    let data = std::fs::read(&path).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    for (i, mut au) in access_units(&data).into_iter().enumerate() {
        if i > 0 {
            let n = au.data.len();
            for b in &mut au.data[n / 2..] {
                *b ^= 0x5a;
            }
        }
        let _ = dec.decode(&au.data, au.is_keyframe);
    }
    assert!(dec.stats().access_units == 10);
}
