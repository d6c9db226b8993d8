//! Choosing the embedder, on the real models and a real PostgreSQL: switching it on a database with
//! people enrolled re-embeds their kept photos while the old gallery serves, engines follow, a person
//! whose photo the new model cannot use is named, a bad model file is named at start, and two
//! enrolled look-alikes make a face unknown rather than a guess.

mod common;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::{test, App};
use panoptes_engine::embed::{EmbedderEntry, ModelId};
use panoptes_engine::enrollment::{enroll_photo, EnrollmentPolicy};
use panoptes_engine::gallery_sync::{read_gallery, GallerySync};
use panoptes_engine::pipeline::PipelineConfig;
use panoptes_engine::reembed::serving_model;
use panoptes_engine::track::identity::{Comparison, Identity, IdentityChange};
use panoptes_engine::track::quality::Quality;
use panoptes_engine::track::{FaceTracker, TrackConfig};
use serde_json::Value;

const BOUNDARY: &str = "panoptes-switch-boundary";

fn identify_request(photo: &str) -> test::TestRequest {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{photo}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(common::photo_bytes(photo));
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    test::TestRequest::post()
        .uri("/api/v1/identify")
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(body)
}

/// A test photo flipped left to right, as JPEG: the same face, a slightly different embedding.
fn mirrored(photo: &str) -> Vec<u8> {
    let img = image::load_from_memory(&common::photo_bytes(photo)).unwrap().fliph().to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92).encode_image(&img).unwrap();
    jpeg
}

fn mobilefacenet() -> PipelineConfig {
    PipelineConfig { embedder: "mobilefacenet".into(), ..PipelineConfig::default() }
}

/// Stored embeddings of `model`.
async fn embeddings_of(url: &str, model: &ModelId) -> i64 {
    common::count_rows(
        url,
        "SELECT count(*) FROM face_embeddings WHERE model_name = $1 AND model_version = $2",
        &[&model.name, &model.version],
    )
    .await
}

#[actix_web::test]
async fn switching_the_embedder_reembeds_every_kept_photo_while_the_old_gallery_serves() {
    let (store, url) = common::fresh_store().await;
    // Enrolled with MobileFaceNet, as by an engine of the previous release.
    let mut old = common::pipeline_with(&mobilefacenet());
    let old_model = serving_model(&store, &mut old).await.unwrap().id;
    let old_gallery = Arc::new(RwLock::new(read_gallery(&store, old.model_info()).await.unwrap()));
    let policy = EnrollmentPolicy::default();
    let obama = store.create_person("Barack Obama", &serde_json::json!({})).await.unwrap();
    let biden = store.create_person("Joe Biden", &serde_json::json!({})).await.unwrap();
    let blank = store.create_person("Kept Photo Without A Face", &serde_json::json!({})).await.unwrap();
    let photos = [
        (obama.id, common::photo_bytes("obama.jpg")),
        (obama.id, common::photo_bytes("obama3.jpg")),
        (biden.id, common::photo_bytes("biden.jpg")),
        (blank.id, mirrored("biden.jpg")),
    ];
    for (person, photo) in &photos {
        enroll_photo(&mut old, &store, &old_gallery, &policy, *person, photo).await.unwrap();
    }
    // One kept photo the new model cannot use (here: no face left in it).
    let faceless = image::RgbImage::from_pixel(320, 240, image::Rgb([90, 120, 90]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&faceless).unwrap();
    let client = panoptes_engine::storage::connect_client(&url).await.unwrap();
    client.execute("UPDATE person_photos SET jpeg = $1 WHERE person_id = $2", &[&jpeg, &blank.id]).await.unwrap();

    // An engine configured with SFace starts. Another engine holds the re-embedding lock for now, so
    // the switch cannot finish: identify answers from the MobileFaceNet gallery meanwhile.
    let held = store.try_reembed_lock().await.unwrap().expect("the lock is free");
    let mut settings = common::engine_settings(&url, "switch-a");
    settings.pipeline.embedder = "sface".into();
    let engine = common::start_engine(settings).await;
    let app = test::init_service(
        App::new()
            .app_data(engine.api_state())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .configure(panoptes_api::configure),
    )
    .await;
    let state = store.gallery_model().await.unwrap().unwrap();
    assert_eq!((state.active.clone(), state.target.name.as_str()), (old_model.clone(), "sface"), "{state:?}");
    let sface = state.target.clone();
    let during: Value = test::call_and_read_body_json(&app, identify_request("obama2.jpg").to_request()).await;
    assert_eq!(during["model"], old_model.to_string(), "{during}");
    assert_eq!(during["faces"][0]["matches"][0]["person_id"], obama.id, "{during}");
    assert_eq!(embeddings_of(&url, &sface).await, 0);

    // The lock is let go: the engine embeds every kept photo with SFace and switches.
    drop(held);
    common::eventually(
        "the gallery serves with SFace",
        Duration::from_secs(180),
        || async { store.gallery_model().await.unwrap().map(|s| s.active) },
        |active| active.as_ref() == Some(&sface),
    )
    .await;
    assert_eq!(embeddings_of(&url, &old_model).await, 4, "the old vectors are kept (a switch back is free)");
    assert_eq!(embeddings_of(&url, &sface).await, 3, "every kept photo with a face");
    let coverage = store.embedding_coverage(&sface).await.unwrap();
    assert_eq!(coverage.failures.len(), 1, "{coverage:?}");
    assert_eq!(coverage.failures[0].person, "Kept Photo Without A Face");

    // The engine's own gallery follows (at its next check), and identify answers with SFace.
    let after = common::eventually(
        "identify answers with SFace",
        Duration::from_secs(60),
        || async {
            test::call_and_read_body_json::<_, _, Value>(&app, identify_request("obama2.jpg").to_request()).await
        },
        |v| v["model"] == sface.to_string(),
    )
    .await;
    assert_eq!(after["faces"][0]["matches"][0]["person_id"], obama.id, "{after}");
    let stats: Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/api/v1/admin/stats").to_request()).await;
    assert_eq!(stats["gallery_model"], sface.to_string(), "{stats}");
    assert_eq!(stats["embedder_switch"]["target"]["failures"][0]["person"], "Kept Photo Without A Face", "{stats}");

    // A second engine still on MobileFaceNet follows the switch at its next check.
    let mut elsewhere = GallerySync::new(old.catalog().clone());
    assert!(elsewhere.refresh(&store, &old_gallery).await.unwrap());
    let (model, len) = {
        let g = old_gallery.read().unwrap();
        (g.model().clone(), g.len())
    };
    assert_eq!((model, len), (sface, 3));
    engine.shutdown().await;
}

#[actix_web::test]
async fn a_missing_or_corrupt_model_file_is_named_at_start() {
    let dir = common::temp_dir("bad-embedder");
    let corrupt = dir.join("corrupt.onnx");
    std::fs::write(&corrupt, b"this is not an ONNX model").unwrap();
    for (file, name) in [(dir.join("absent.onnx"), "absent.onnx"), (corrupt.clone(), "corrupt.onnx")] {
        let mut config = PipelineConfig { embedder: "brought".into(), ..PipelineConfig::default() };
        let entry = EmbedderEntry {
            file: Some(file),
            mean: Some(127.5),
            std: Some(128.0),
            match_threshold: Some(0.5),
            ..EmbedderEntry::default()
        };
        config.embedders.insert("brought".into(), entry);
        let err = panoptes_engine::pipeline::FacePipeline::load(&common::runtime(), &common::models_dir(), &config)
            .err()
            .expect("must fail");
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain += &format!(": {s}");
            source = s.source();
        }
        assert!(chain.contains(name), "{chain}");
    }
    // The same through the whole start of an engine (what `panoptes serve` runs).
    let (_, url) = common::fresh_store().await;
    let mut settings = common::engine_settings(&url, "bad-model");
    settings.models.dir = dir.clone();
    let err = panoptes::Context::open(settings).await.err().expect("must fail");
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain += &format!(": {s}");
        source = s.source();
    }
    assert!(chain.contains(&common::path_str(&dir)), "the missing file is named: {chain}");
}

/// Every embedding of a track of `photos`, compared with the gallery as the inference worker does.
fn track_of(
    p: &mut panoptes_engine::pipeline::FacePipeline,
    gallery: &panoptes_engine::gallery::Gallery,
    photos: &[&str],
) -> (Option<IdentityChange>, panoptes_engine::track::identity::Evidence) {
    let mut tracker: FaceTracker<u32> = FaceTracker::new(TrackConfig::default());
    let face = p.analyze_bytes(&common::photo_bytes(photos[0])).unwrap().remove(0).face;
    let at = std::time::Instant::now();
    let q = Quality { size: 1.0, sharpness: 1.0, frontal: 1.0, score: 1.0 };
    let id = tracker.update(&[face], &[q], at, chrono::Utc::now(), &0).assigned[0].unwrap();
    let mut last = None;
    for photo in photos {
        let e = p.analyze_bytes(&common::photo_bytes(photo)).unwrap().remove(0).embedding;
        let found = gallery.search(p.model(), &e, 5).unwrap();
        let change = tracker.add_embedding(id, 1.0, Comparison::from_search(&found, 5), &gallery.judgement());
        last = change.or(last);
    }
    (last, tracker.track(id).unwrap().evidence())
}

#[tokio::test]
async fn two_enrolled_look_alikes_make_a_face_unknown_not_a_guess() {
    let (store, _) = common::fresh_store().await;
    let mut p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let policy = EnrollmentPolicy::default();
    // The same man enrolled under two names, from a photo and its mirror image: as close as
    // look-alikes can be.
    let a = store.create_person("Look-alike A", &serde_json::json!({})).await.unwrap();
    enroll_photo(&mut p, &store, &gallery, &policy, a.id, &common::photo_bytes("obama.jpg")).await.unwrap();
    let (alone, _) = track_of(&mut p, &gallery.read().unwrap(), &["obama2.jpg", "obama3.jpg"]);
    assert!(
        matches!(alone, Some(IdentityChange::Settled(Identity::Person { person_id, .. })) if person_id == a.id),
        "with one of them enrolled he is recognised: {alone:?}"
    );
    let b = store.create_person("Look-alike B", &serde_json::json!({})).await.unwrap();
    enroll_photo(&mut p, &store, &gallery, &policy, b.id, &mirrored("obama.jpg")).await.unwrap();
    let (both, evidence) = track_of(&mut p, &gallery.read().unwrap(), &["obama2.jpg", "obama3.jpg"]);
    assert_eq!(both, Some(IdentityChange::Settled(Identity::Unknown)), "{evidence:?}");
    assert!(evidence.ambiguous, "{evidence:?}");
    assert_eq!(evidence.decision(Identity::Unknown), "ambiguous");
    let ids = [evidence.best.unwrap().0, evidence.runner_up.unwrap().0];
    assert!(ids.contains(&a.id) && ids.contains(&b.id), "{evidence:?}");
}
