//! What each fuzz target does with its input, and what must hold whatever the input: no panic, no
//! abort, and the checks below. Shared by the libFuzzer targets (`fuzz_targets/`) and by the suite's
//! replay of the kept inputs (`tests/fuzz_regressions.rs`, which includes this file by path).

use actix_web::http::{Method, StatusCode};
use actix_web::{test, web, App};
use panoptes_api::{ApiConfig, AppState};
use panoptes_engine::decode::{self, Codec, DecoderBackend};
use panoptes_engine::image_input::{decode_rgb, ImageLimits};
use panoptes_engine::source::annexb::access_units;

/// Bytes as a camera's H.264 elementary stream: split into access units (as the file source does,
/// and as retina hands them over after depacketizing RTP) and decoded in order by each backend
/// (openh264 and libavcodec), with the keyframe flag taken from the stream itself. Errors are fine;
/// panics and aborts are not.
pub fn h264_access_units(data: &[u8]) {
    let units = access_units(data);
    for backend in [DecoderBackend::Openh264, DecoderBackend::Libav] {
        let Ok(mut decoder) = decode::open(backend, Codec::H264) else { return };
        for (tag, unit) in units.iter().enumerate() {
            if let Ok(pictures) = decoder.decode(&unit.data, unit.is_keyframe, tag as u64, &mut |_, _| true) {
                for picture in pictures.into_iter().filter_map(|p| p.frame) {
                    // Decoders stop at level 5.2's frame size (36,864 macroblocks); frames hold 16..=8192 px.
                    let (w, h) = picture.dimensions();
                    assert!(w > 0 && h > 0 && (w as u64) * (h as u64) <= 36_864 * 256, "picture {w}x{h}");
                }
            }
        }
    }
}

/// Bytes as an uploaded enrollment or identify photo: whatever is decoded respects the limits.
pub fn enrollment_image(data: &[u8]) {
    let limits = ImageLimits { max_bytes: 1 << 20, max_side: 4096, max_pixels: 4_000_000 };
    if let Ok(img) = decode_rgb(data, &limits) {
        let (w, h) = img.dimensions();
        assert!(w > 0 && h > 0 && w <= 4096 && h <= 4096 && (w as u64) * (h as u64) <= 4_000_000, "{w}x{h}");
    }
}

/// The JSON-bodied operations: (method, path).
const OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/api/v1/cameras"),
    ("PATCH", "/api/v1/cameras/1"),
    ("PATCH", "/api/v1/persons/1"),
    ("POST", "/api/v1/keys"),
];

/// Sends requests to one in-process API: (method, path, JSON body) → (status, body).
type Client = Box<dyn FnMut(&str, &str, Vec<u8>) -> (StatusCode, Vec<u8>)>;

/// The real routes, guard and handlers over an open API whose database refuses connections. Built once
/// per process: actix-router deliberately leaks a little for every route it registers, which is
/// nothing for a server and a leak report for a fuzzer that builds an app per input.
fn client() -> Client {
    let system = actix_web::rt::System::new();
    let app = system.block_on(async {
        let store = panoptes_engine::storage::Store::new("postgresql://postgres@127.0.0.1:1/none", 1)
            .expect("a well-formed database URL");
        let id = panoptes_engine::embed::ModelId { name: "fuzz".into(), version: "0".into() };
        let judgement =
            panoptes_engine::embed::Judgement { match_threshold: 0.4, instant_match_score: 0.55, margin: 0.08 };
        let model = panoptes_engine::embed::ModelInfo { id, dim: 128, judgement };
        let gallery = std::sync::Arc::new(std::sync::RwLock::new(panoptes_engine::gallery::Gallery::new(model)));
        // No rate limit: the fuzzer sends thousands of requests a second from one "address".
        let config = ApiConfig { rate_limit_per_second: 1e12, rate_limit_burst: 1e12, ..ApiConfig::default() };
        let state = AppState::new(store, gallery, config).expect("the default API settings");
        test::init_service(
            App::new()
                .app_data(web::Data::new(state))
                .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
                .configure(panoptes_api::configure),
        )
        .await
    });
    Box::new(move |method, path, body| {
        system.block_on(async {
            let method = Method::from_bytes(method.as_bytes()).expect("a known method");
            let req = test::TestRequest::default()
                .method(method)
                .uri(path)
                .insert_header(("Content-Type", "application/json"))
                .set_payload(body)
                .to_request();
            let resp = test::call_service(&app, req).await;
            (resp.status(), test::read_body(resp).await.to_vec())
        })
    })
}

thread_local! {
    // Never dropped: at thread exit actix-http's own thread-locals may already be gone, and dropping
    // the app after them panics. The process (or test thread) is ending anyway.
    static CLIENT: std::mem::ManuallyDrop<std::cell::RefCell<Option<Client>>> =
        const { std::mem::ManuallyDrop::new(std::cell::RefCell::new(None)) };
}

/// Builds the in-process API before fuzzing starts (libFuzzer's initialisation), so that actix-router's
/// one-time leak is not charged to the first input.
pub fn api_json_body_init() {
    CLIENT.with(|c| {
        c.borrow_mut().get_or_insert_with(client);
    });
}

/// The first byte picks a JSON-bodied operation, the rest is its body, sent to the real routes and
/// handlers. Every answer must be a 4xx naming the problem in the JSON error shape, or 503
/// `database_unavailable` for a body that passed validation: never a 500, never a panic.
pub fn api_json_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let (method, path) = OPERATIONS[pick as usize % OPERATIONS.len()];
    let (status, answer) = CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        let send = c.get_or_insert_with(client);
        send(method, path, body.to_vec())
    });
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    let code = answer["error"]["code"].as_str().unwrap_or("");
    assert!(
        status.is_client_error() || (status == StatusCode::SERVICE_UNAVAILABLE && code == "database_unavailable"),
        "{path}: {status} {answer}"
    );
    assert!(!code.is_empty(), "{path}: {status} without an error code: {answer}");
}
