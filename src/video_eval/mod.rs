//! `panoptes eval video`: recognition measured on labelled clips by the real engine. The stills are
//! enrolled in a throwaway database, each clip plays once as a file camera of an engine assembled as
//! `serve` assembles it (every frame analysed, unknown faces recorded), the engine is shut down
//! (ending every appearance), and the stored appearances are scored against the clip's truth
//! (see [`score`]).

pub mod score;
pub mod truth;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use panoptes_actors::camera::CameraState;
use panoptes_actors::scheduler::{GetSchedulerStats, ListCameraStatus};
use panoptes_engine::enrollment::{enroll_photo, EnrollError};
use panoptes_engine::source::file::{FileInfo, FileSource};
use panoptes_engine::source::rtsp::RtspTransport;
use panoptes_engine::storage::{CameraOptions, DetectionFilter, NewCamera, StorageError};
use serde::Serialize;

use crate::throwaway_database::{ThrowawayDatabase, ThrowawayDatabaseError};
use crate::{Context, ContextError, Engine, EngineError, Settings};
use score::{PersonFigures, SeenAppearance};
use truth::{EnrolStill, TruthWindow};

#[derive(Debug, thiserror::Error)]
pub enum VideoEvalError {
    #[error("{} line {line}, column {column}: {message}", file.display())]
    Input { file: PathBuf, line: usize, column: usize, message: String },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {name:?} is in the truth but not in the enrolment CSV (use `stranger` for people nobody enrolled)", file.display())]
    UnknownPerson { file: PathBuf, name: String },
    #[error("no clips in {} (expected <clip>.mp4 beside <clip>.truth.csv; models/fetch.sh makes tests/data/video)", .0.display())]
    NoClips(PathBuf),
    #[error("the clip {}", path.display())]
    Clip {
        path: PathBuf,
        #[source]
        source: panoptes_engine::source::SourceError,
    },
    #[error("enrolling {name} from {}", photo.display())]
    Enrol {
        name: String,
        photo: PathBuf,
        #[source]
        source: EnrollError,
    },
    #[error("the clip {} did not finish playing within {seconds} s (last state {state})", path.display())]
    NotFinished { path: PathBuf, seconds: u64, state: String },
    #[error(transparent)]
    Database(#[from] ThrowawayDatabaseError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("starting the engine")]
    Engine(#[from] EngineError),
    #[error("reading the stored appearances")]
    Storage(#[from] StorageError),
    #[error("the engine's scheduler stopped answering")]
    Mailbox(#[from] actix::MailboxError),
}

/// One clip and its truth.
#[derive(Clone, Debug)]
pub struct ClipInput {
    pub clip: PathBuf,
    pub truth: PathBuf,
    /// A substream rendition of `clip` to detect on (the camera's `detect_url`; `clip` is then its
    /// main stream, read at its keyframes).
    pub detect: Option<PathBuf>,
}

/// The clips of a set folder: every `<clip>.truth.csv` with a video of the same stem beside it, in
/// name order, and the folder's `enrol.csv`. A `<clip>.detect.<ext>` beside a clip is its substream.
pub fn clips_of_set(dir: &Path) -> Result<(Vec<ClipInput>, PathBuf), VideoEvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| VideoEvalError::Read { path: dir.to_path_buf(), source })?;
    let mut clips = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".truth.csv")) else {
            continue;
        };
        let video = ["mp4", "mkv", "mov", "h264"].iter().map(|x| dir.join(format!("{stem}.{x}"))).find(|p| p.is_file());
        let detect =
            ["mp4", "mkv", "mov", "h264"].iter().map(|x| dir.join(format!("{stem}.detect.{x}"))).find(|p| p.is_file());
        if let Some(clip) = video {
            clips.push(ClipInput { clip, truth: path, detect });
        }
    }
    clips.sort_by(|a, b| a.clip.cmp(&b.clip));
    if clips.is_empty() {
        return Err(VideoEvalError::NoClips(dir.to_path_buf()));
    }
    Ok((clips, dir.join("enrol.csv")))
}

/// What one clip gave.
#[derive(Clone, Debug, Serialize)]
pub struct ClipReport {
    pub clip: String,
    pub seconds: f64,
    /// Frames in the clip, frames handed to analysis (the motion gate's included), and of those the
    /// ones dropped because a worker was still busy (the box fell behind).
    pub frames: u64,
    pub sampled: u64,
    pub dropped: u64,
    /// Frames the file source delivered late (the clip's clock stretched by that much).
    pub late_frames: u64,
    pub truth: Vec<TruthWindow>,
    pub appearances: Vec<SeenAppearance>,
    pub persons: BTreeMap<String, PersonFigures>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VideoEvalReport {
    pub embedder: String,
    pub match_threshold: Option<f32>,
    pub clips: Vec<ClipReport>,
    /// Over every clip, per person (and `stranger`).
    pub persons: BTreeMap<String, PersonFigures>,
    pub totals: PersonFigures,
    pub wall_s: f64,
}

/// Checks every input before anything runs: the truth names only enrolled people (or strangers).
fn load_inputs(clips: &[ClipInput], enrol: &Path) -> Result<(Vec<EnrolStill>, Vec<Vec<TruthWindow>>), VideoEvalError> {
    let stills = truth::read_enrol(enrol)?;
    let mut truths = Vec::new();
    for c in clips {
        if !c.clip.is_file() {
            return Err(VideoEvalError::Read {
                path: c.clip.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let t = truth::read_truth(&c.truth)?;
        truth::check_names(&c.truth, &t, &stills)?;
        truths.push(t);
    }
    Ok((stills, truths))
}

/// Runs the evaluation on the configured PostgreSQL server, in a database of its own that is dropped
/// at the end. Must run on an actix system (the engine's actors).
pub async fn evaluate(
    mut settings: Settings,
    clips: &[ClipInput],
    enrol: &Path,
) -> Result<VideoEvalReport, VideoEvalError> {
    let started = Instant::now();
    let (stills, truths) = load_inputs(clips, enrol)?;
    // A clip that is not playable video is named before the database is made.
    let mut playable = Vec::new();
    for c in clips {
        playable.push(measure_clip(c, settings.streaming.file_fps).await?);
    }
    let (database, url) =
        ThrowawayDatabase::create(&settings.database_url().map_err(ContextError::from)?, "panoptes_eval").await?;
    let scratch = std::env::temp_dir().join(format!("panoptes-eval-video-{}-{}", std::process::id(), database.name()));
    settings.database.url = url;
    settings.streaming.demo_clip.clear();
    settings.streaming.record_unknown = true;
    // Every frame analysed, as many as the box manages: a measurement of recognition, not of load.
    settings.streaming.shedding = false;
    settings.streaming.node_id = "eval".into();
    settings.snapshots.enabled = false;
    settings.snapshots.dir = scratch.join("snapshots").to_string_lossy().into_owned();
    settings.api.keys.clear();
    settings.mqtt.url.clear();
    let result = run_clips(settings, &playable, &stills, &truths).await;
    database.drop().await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (embedder, match_threshold, clips) = result?;
    let mut persons: BTreeMap<String, PersonFigures> = BTreeMap::new();
    let mut totals = PersonFigures::default();
    for c in &clips {
        for (name, f) in &c.persons {
            persons.entry(name.clone()).or_default().add(f);
            totals.add(f);
        }
    }
    // Strangers' windows are not expected to be recognised: the totals count enrolled people's.
    if let Some(s) = persons.get("stranger") {
        totals.expected -= s.expected;
        totals.found -= s.found;
    }
    Ok(VideoEvalReport { embedder, match_threshold, clips, persons, totals, wall_s: started.elapsed().as_secs_f64() })
}

/// A clip read through once: its canonical path, what it holds and how long one pass plays.
struct PlayableClip {
    input: ClipInput,
    path: PathBuf,
    info: FileInfo,
    pass: Duration,
}

async fn measure_clip(input: &ClipInput, raw_fps: f32) -> Result<PlayableClip, VideoEvalError> {
    let path = std::fs::canonicalize(&input.clip)
        .map_err(|source| VideoEvalError::Read { path: input.clip.clone(), source })?;
    let (info, pass) = FileSource::measure(&path, raw_fps)
        .await
        .map_err(|source| VideoEvalError::Clip { path: input.clip.clone(), source })?;
    Ok(PlayableClip { input: input.clone(), path, info, pass })
}

async fn run_clips(
    settings: Settings,
    clips: &[PlayableClip],
    stills: &[EnrolStill],
    truths: &[Vec<TruthWindow>],
) -> Result<(String, Option<f32>, Vec<ClipReport>), VideoEvalError> {
    let embedder = settings.pipeline.embedder.clone();
    let mut names: HashMap<i64, String> = HashMap::new();
    let threshold = {
        let mut ctx = Context::open(settings.clone()).await?;
        for s in stills {
            let bytes =
                std::fs::read(&s.photo).map_err(|source| VideoEvalError::Read { path: s.photo.clone(), source })?;
            let person = ctx.store.create_person(&s.name, &serde_json::json!({})).await?;
            enroll_photo(&mut ctx.pipeline, &ctx.store, &ctx.gallery, &ctx.settings.enrollment, person.id, &bytes)
                .await
                .map_err(|source| VideoEvalError::Enrol { name: s.name.clone(), photo: s.photo.clone(), source })?;
            names.insert(person.id, s.name.clone());
        }
        ctx.store.close();
        Some(ctx.pipeline.model_info().judgement.match_threshold)
    };
    let mut reports = Vec::new();
    for (clip, truth) in clips.iter().zip(truths) {
        reports.push(run_clip(&settings, clip, truth, &names).await?);
    }
    Ok((embedder, threshold, reports))
}

async fn run_clip(
    settings: &Settings,
    playable: &PlayableClip,
    truth: &[TruthWindow],
    names: &HashMap<i64, String>,
) -> Result<ClipReport, VideoEvalError> {
    let PlayableClip { input, path, info, pass } = playable;
    let (info, pass) = (*info, *pass);
    let frames = (pass.as_secs_f64() * f64::from(info.fps)).round() as u64;
    let ctx = Context::open(settings.clone()).await?;
    let options = CameraOptions { looping: Some(false), ..CameraOptions::default() };
    let name = input.clip.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "clip".into());
    let url = path.to_string_lossy().into_owned();
    let detect_url = match &input.detect {
        Some(d) => Some(
            std::fs::canonicalize(d)
                .map_err(|source| VideoEvalError::Read { path: d.clone(), source })?
                .to_string_lossy()
                .into_owned(),
        ),
        None => None,
    };
    let camera = ctx
        .store
        .insert_camera(&NewCamera {
            name: &name,
            url: &url,
            analysis_fps: info.fps,
            enabled: true,
            transport: RtspTransport::Tcp,
            options: &options,
            detect_url: detect_url.as_deref(),
        })
        .await?;
    let engine = Engine::start(ctx).await?;
    let (t0, late_frames) = play_once(&engine, &input.clip, camera.id, pass, info.fps).await;
    let decoder = match engine.scheduler().send(ListCameraStatus).await {
        Ok(reports) => reports.iter().find(|r| r.id == camera.id).and_then(|r| r.decoder),
        Err(_) => None,
    }
    .unwrap_or_default();
    let store = engine.store().clone();
    let _ = engine.shutdown().await;
    let t0 = t0?;
    let filter = DetectionFilter { camera_id: Some(camera.id), ..DetectionFilter::default() };
    let rows = store.list_detections(&filter, None, 100_000).await;
    store.close();
    let secs = |t: DateTime<Utc>| (t - t0).num_milliseconds() as f64 / 1000.0;
    let mut seen: Vec<SeenAppearance> = rows?
        .into_iter()
        .map(|d| {
            let decision = d.evidence.decision.clone().unwrap_or_else(|| match d.person_id {
                Some(_) => "matched".into(),
                None => "unknown".into(),
            });
            SeenAppearance {
                start_s: secs(d.detected_at),
                end_s: secs(d.last_seen_at.unwrap_or(d.detected_at)),
                person: d.person_id.map(|id| names.get(&id).cloned().unwrap_or_else(|| format!("person {id}"))),
                decision,
                score: d.score,
                runner_up: d.evidence.runner_up_person_id.and_then(|id| names.get(&id).cloned()),
                runner_up_score: d.evidence.runner_up_score,
                frames: d.frames,
                embeddings: d.evidence.embeddings,
                window: None,
                verdict: String::new(),
            }
        })
        .collect();
    seen.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let persons = score::score(truth, &mut seen);
    Ok(ClipReport {
        clip: name,
        seconds: pass.as_secs_f64(),
        frames,
        sampled: decoder.sampled,
        dropped: decoder.dropped_for_inference,
        late_frames,
        truth: truth.to_vec(),
        appearances: seen,
        persons,
    })
}

/// Waits for the camera to play the clip once and the workers to finish its frames. Answers the
/// capture time of the clip's first frame and the frames delivered late.
async fn play_once(
    engine: &Engine,
    clip: &Path,
    camera_id: i64,
    pass: Duration,
    fps: f32,
) -> (Result<DateTime<Utc>, VideoEvalError>, u64) {
    let limit = pass * 3 + Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    let mut t0 = None;
    let mut late = 0;
    let mut state = "not started".to_string();
    let not_finished =
        |state: String| VideoEvalError::NotFinished { path: clip.to_path_buf(), seconds: limit.as_secs(), state };
    loop {
        let reports = match engine.scheduler().send(ListCameraStatus).await {
            Ok(r) => r,
            Err(e) => return (Err(e.into()), late),
        };
        if let Some(s) = reports.iter().find(|r| r.id == camera_id).and_then(|r| r.status.clone()) {
            state = s.state.as_str().to_string();
            late = s.frames_late;
            // The first frame's capture time, from the moment the first frames were seen (polled
            // every 10 ms, so within a frame at 10 fps).
            if t0.is_none() && s.frames_received > 0 {
                let behind = Duration::from_secs_f64((s.frames_received - 1) as f64 / f64::from(fps.max(1.0)));
                t0 = Some(Utc::now() - chrono::Duration::from_std(behind).unwrap_or_default());
            }
            if s.state == CameraState::Finished {
                break;
            }
        }
        if Instant::now() > deadline {
            return (Err(not_finished(state)), late);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The last frames may still be in the decoder or a worker: wait until nothing more is analysed.
    let mut analysed = 0;
    let mut still = 0;
    while still < 10 && Instant::now() < deadline {
        let Ok(now) = analysed_frames(engine).await else { break };
        still = if now == analysed { still + 1 } else { 0 };
        analysed = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (t0.ok_or_else(|| not_finished(state)), late)
}

async fn analysed_frames(engine: &Engine) -> Result<u64, actix::MailboxError> {
    Ok(engine.scheduler().send(GetSchedulerStats).await?.workers.iter().map(|w| w.frames).sum())
}
