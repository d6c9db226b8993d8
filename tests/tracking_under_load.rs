//! The tracker when the CPU is busy: a worker that falls behind its camera must not end a track whose
//! face it has not had the chance to see. Lost time is counted on the camera's clock (the arrival
//! time of the frames the worker has looked at), so frames it never analysed — still queued, or
//! replaced by newer ones — are not misses. Run with the CPU saturated by other work.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use panoptes_actors::decoder::{CameraFeed, FrameReady, SampledFrame};
use panoptes_actors::inference::{GetWorkerStats, InferenceWorker};
use panoptes_actors::messages::TrackEvent;
use panoptes_engine::frame::YuvFrame;

/// (frames, first seen, last seen) of every track that ended.
type EndedTracks = Arc<Mutex<Vec<(u32, DateTime<Utc>, DateTime<Utc>)>>>;

struct Ended(EndedTracks);

impl Actor for Ended {
    type Context = Context<Self>;
}

impl Handler<TrackEvent> for Ended {
    type Result = ();
    fn handle(&mut self, event: TrackEvent, _: &mut Self::Context) {
        if let TrackEvent::Ended { track, .. } = event {
            self.0.lock().unwrap().push((track.frames, track.first_seen, track.last_seen));
        }
    }
}

/// Threads spinning on every core until dropped: other work sharing the machine.
struct CpuHogs(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl CpuHogs {
    fn start() -> CpuHogs {
        let stop = Arc::new(AtomicBool::new(false));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        CpuHogs(stop, threads)
    }
}

impl Drop for CpuHogs {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

#[actix_web::test]
async fn a_worker_that_falls_behind_does_not_split_an_appearance() {
    let (store, _) = common::fresh_store().await;
    let p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let ended = EndedTracks::default();
    let observer = Ended(ended.clone()).start();
    let arbiter = Arbiter::new();
    let worker = InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| {
        InferenceWorker::new(p, gallery, observer.recipient())
    });
    let _hogs = CpuHogs::start();

    let photo = image::load_from_memory(&common::photo_bytes("obama2.jpg")).unwrap().resize(
        640,
        640,
        image::imageops::FilterType::Triangle,
    );
    let frame = Arc::new(YuvFrame::from_rgb(&photo.to_rgb8()));
    let feed = Arc::new(CameraFeed::default());
    let (t0, w0) = (Instant::now(), Utc::now());
    let step = Duration::from_millis(200);
    let frames = 5u32;
    for k in 0..frames {
        // Frames captured 200 ms apart reach the worker 2 s apart: it is that far behind the camera.
        // By the wall clock the face is unseen for longer than `lost_secs` (1.5 s) each time.
        feed.slot.put(SampledFrame {
            camera_id: 9,
            frame: frame.clone(),
            received_at: t0 + step * k,
            captured_at: w0 + step * k,
            regions: Vec::new(),
            connection: 1,
            capture: None,
        });
        worker.send(FrameReady { camera_id: 9, feed: feed.clone() }).await.unwrap();
        common::eventually(
            "the frame analysed",
            Duration::from_secs(60),
            || async { worker.send(GetWorkerStats).await.unwrap() },
            |s| s.frames > k as u64,
        )
        .await;
        assert!(ended.lock().unwrap().is_empty(), "a track ended while its face was in every frame analysed");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(ended.lock().unwrap().is_empty(), "{:?}", ended.lock().unwrap());

    // The camera stops: its one track ends, as long as the walk in capture time.
    drop(feed);
    let tracks = common::eventually(
        "the camera's track ended",
        Duration::from_secs(30),
        || async { ended.lock().unwrap().clone() },
        |t| !t.is_empty(),
    )
    .await;
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    let (n, first, last) = tracks[0];
    assert_eq!(n, frames);
    assert_eq!((last - first).num_milliseconds(), 800);
    arbiter.stop();
}
