//! The `panoptes` binary.

mod allocator;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use panoptes::{Context, Settings};

#[derive(Parser)]
#[command(name = "panoptes", version, about = "Multi-camera face recognition engine")]
struct Cli {
    /// Configuration file (default: $PANOPTES_CONFIG, else config/panoptes.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine and its HTTP API.
    Serve,
    /// Enroll a person from one or more photos (each must show exactly one face).
    Enroll {
        /// Name of the new person.
        #[arg(long, default_value = "")]
        name: String,
        /// Add the photos to an existing person instead.
        #[arg(long)]
        person_id: Option<i64>,
        #[arg(required = true)]
        photos: Vec<PathBuf>,
    },
    /// Find every face in a photo and its best matches in the gallery.
    Identify {
        photo: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List or erase enrolled persons.
    Persons {
        #[command(subcommand)]
        action: PersonsAction,
    },
    /// Create, list or revoke API keys stored in the database.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Switch the gallery to the configured embedder (pipeline.embedder) now: embed every kept
    /// enrollment photo with it, in the foreground, and report who could not be embedded.
    Reembed,
    /// Write the database (pg_dump), the snapshot files and a manifest into DIR (new or empty).
    Backup { dir: PathBuf },
    /// Restore a backup of `panoptes backup` into the configured database and snapshots.dir, which
    /// must be empty unless --force.
    Restore {
        dir: PathBuf,
        /// Replace what the database and snapshots.dir hold (refused while an engine runs on it).
        #[arg(long)]
        force: bool,
    },
    /// Measure recognition on labelled photo pairs, or detection of small and dim faces (no database).
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Measure the whole engine on file-source cameras (in a throwaway database on the configured
    /// PostgreSQL server; nobody enrolled unless `--enroll` names photos).
    Bench {
        #[arg(long, default_value_t = 1)]
        cameras: usize,
        /// Frame rate of a raw (Annex-B) clip; a container (MP4, MKV, MOV) plays at its own.
        #[arg(long, default_value_t = 10.0)]
        fps: f32,
        /// Frames per second analysed per camera.
        #[arg(long, default_value_t = 5.0)]
        analysis_fps: f32,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Seconds of streaming before the window opens: every camera's first frames (a new track
        /// and its embeddings on each, all at once) are the start-up transient, not the steady state.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Inference workers (default: streaming.inference_workers from config).
        #[arg(long)]
        workers: Option<usize>,
        /// The clip every camera plays in a loop: MP4, MKV, MOV, or raw H.264/H.265.
        #[arg(long, default_value = ".local/demo/lobby.h264")]
        video: PathBuf,
        /// A substream rendition of --video (same frames, lower resolution): every camera detects on
        /// it and crops faces from --video's keyframes (a camera's `detect_url`).
        #[arg(long)]
        detect_video: Option<PathBuf>,
        /// Execution provider for the workers (default: pipeline.session.provider from config).
        #[arg(long)]
        provider: Option<panoptes_engine::runtime::Provider>,
        /// Let the scheduler lower analysis rates under load, as `serve` does (off by default, so
        /// overload shows as latency and dropped frames).
        #[arg(long)]
        shedding: bool,
        /// Decode every frame and analyse none: the decoding floor to compare the full cost with.
        #[arg(long)]
        decode_only: bool,
        /// Decoder backend (default: streaming.decoder from config).
        #[arg(long)]
        decoder: Option<panoptes_engine::decode::DecoderBackend>,
        /// A photo to enroll before the run, one person per photo named after its file (repeatable):
        /// the appearances found are then reported.
        #[arg(long)]
        enroll: Vec<PathBuf>,
        /// Switch the cameras on one after another, spread over one pass of the clip, so that they
        /// show different moments of it as independent cameras do (by default they start together and
        /// every face appears on all of them at once: the worst case).
        #[arg(long)]
        stagger: bool,
    },
}

#[derive(Subcommand)]
enum EvalWhat {
    /// Recognition on labelled pairs of photos: accuracy, TAR at FAR, ROC AUC, refusals.
    Recognition {
        /// The folder the pairs' file names are relative to.
        #[arg(long, default_value = "tests/data/eval")]
        photos: PathBuf,
        /// CSV: file_x,file_y,same (yes/no)[,condition]; a header line is allowed.
        #[arg(long, default_value = "tests/data/eval/pairs.csv")]
        pairs: PathBuf,
        /// Match threshold to report at (default: the embedder's, pipeline.embedders.<name>.match_threshold).
        #[arg(long)]
        threshold: Option<f32>,
        #[arg(long)]
        json: bool,
    },
    /// Recognition on labelled clips by the whole engine (in a throwaway database on the configured
    /// PostgreSQL server): per person, truth windows found, correct, missed, wrong matches, strangers
    /// matched, unknown and ambiguous appearances.
    Video {
        /// One clip (MP4, MKV, MOV or raw H.264) instead of a set; needs --truth and --enrol.
        #[arg(long)]
        clip: Option<PathBuf>,
        /// A substream rendition of --clip to detect on (the camera's detect_url); --clip is then the
        /// main stream, read at its keyframes for recognition.
        #[arg(long)]
        detect_clip: Option<PathBuf>,
        /// The clip's truth, CSV: name,start_s,end_s (name `stranger` for people nobody enrolled).
        #[arg(long)]
        truth: Option<PathBuf>,
        /// The enrolment stills, CSV: name,photo (paths relative to the CSV); default: the set's enrol.csv.
        #[arg(long)]
        enrol: Option<PathBuf>,
        /// A folder of clips, each <clip>.mp4 beside <clip>.truth.csv, and enrol.csv (models/fetch.sh
        /// makes the default one).
        #[arg(long, default_value = "tests/data/video")]
        set: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Detection of small and dim faces: faces found, false detections and cost per way of scanning.
    Detection {
        /// Where t1.jpg and obama2.jpg are (models/fetch.sh puts them in tests/data/photos).
        #[arg(long, default_value = "tests/data/photos")]
        photos: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PersonsAction {
    List {
        /// Only names containing this text.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Erase a person: their embeddings, enrolment photos and the face snapshots of their appearances
    /// (the appearances stay, as unknown faces); the erasure is recorded without their name.
    Delete {
        id: i64,
        /// Erase every trace: also their appearances and the appearances' context frames.
        #[arg(long)]
        erase_all: bool,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a key (printed once; only its SHA-256 digest is stored).
    Create {
        #[arg(long)]
        name: String,
        /// admin (everything) or viewer (reads, identify, live events).
        #[arg(long, default_value = "admin")]
        role: String,
    },
    List,
    /// Revoke a stored key.
    Delete {
        id: i64,
    },
}

fn main() -> ExitCode {
    allocator::limit_arenas();
    tracing_subscriber::fmt().with_env_filter(log_filter()).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`, or `info` by default. tokio-postgres logs every statement's parameters at debug level,
/// camera passwords among them, so it stays at `warn` unless `RUST_LOG` names it explicitly.
fn log_filter() -> tracing_subscriber::EnvFilter {
    const DEFAULT: &str = "info,ort=warn";
    let quiet_postgres = |spec: &str| {
        if spec.contains("tokio_postgres") {
            spec.to_string()
        } else {
            format!("{spec},tokio_postgres=warn")
        }
    };
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let spec = quiet_postgres(if spec.trim().is_empty() { DEFAULT } else { &spec });
    tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("RUST_LOG={spec:?} is not a valid log filter ({e}); logging at info");
        tracing_subscriber::EnvFilter::new(quiet_postgres(DEFAULT))
    })
}

fn run(cli: Cli) -> Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Eval { what } => {
            return match what {
                EvalWhat::Recognition { photos, pairs, threshold, json } => {
                    commands::eval::recognition(&settings, &photos, &pairs, threshold, json)
                }
                EvalWhat::Detection { photos, json } => commands::eval::detection(&settings, &photos, json),
                EvalWhat::Video { clip, detect_clip, truth, enrol, set, json } => {
                    let args = commands::eval_video::EvalVideoArgs { clip, detect_clip, truth, enrol, set, json };
                    actix_web::rt::System::new().block_on(commands::eval_video::run(settings, args))
                }
            };
        }
        Command::Serve => {
            return actix_web::rt::System::new()
                .block_on(async move { commands::serve::run(Context::open(settings).await?).await });
        }
        Command::Bench {
            cameras,
            fps,
            analysis_fps,
            seconds,
            warmup,
            workers,
            video,
            detect_video,
            provider,
            shedding,
            decode_only,
            decoder,
            enroll,
            stagger,
        } => {
            let mut settings = settings;
            if let Some(p) = provider {
                settings.pipeline.session.provider = p;
            }
            if let Some(d) = decoder {
                settings.streaming.decoder = d;
            }
            let args = commands::bench::BenchArgs {
                cameras,
                fps,
                analysis_fps,
                seconds,
                warmup,
                workers,
                video,
                detect_video,
                shedding,
                decode_only,
                enroll,
                stagger,
            };
            return actix_web::rt::System::new().block_on(commands::bench::run(settings, args));
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve | Command::Bench { .. } | Command::Eval { .. } => Ok(()), // handled above
            Command::Enroll { name, person_id, photos } => {
                commands::enroll::run(Context::open(settings).await?, &name, person_id, &photos).await
            }
            Command::Identify { photo, json } => {
                commands::identify::run(Context::open(settings).await?, &photo, json).await
            }
            Command::Persons { action } => {
                let store = panoptes_engine::storage::Store::connect(&settings.database_url()?, 2).await?;
                match action {
                    PersonsAction::List { search, json } => {
                        commands::persons::list(&store, search.as_deref(), json).await
                    }
                    PersonsAction::Delete { id, erase_all } => {
                        let snapshots =
                            std::sync::Arc::new(panoptes_engine::snapshot::SnapshotStore::new(&settings.snapshots)?);
                        let scope = if erase_all {
                            panoptes_engine::erasure::ErasureScope::All
                        } else {
                            panoptes_engine::erasure::ErasureScope::Biometrics
                        };
                        commands::persons::delete(&store, &snapshots, id, scope).await
                    }
                }
            }
            Command::Keys { action } => {
                let store = panoptes_engine::storage::Store::connect(&settings.database_url()?, 1).await?;
                match action {
                    KeysAction::Create { name, role } => commands::keys::create(&store, &name, &role).await,
                    KeysAction::List => commands::keys::list(&store).await,
                    KeysAction::Delete { id } => commands::keys::delete(&store, id).await,
                }
            }
            Command::Reembed => commands::reembed::run(Context::open(settings).await?).await,
            Command::Backup { dir } => commands::backup::run(&settings, &dir).await,
            Command::Restore { dir, force } => commands::restore::run(&settings, &dir, force).await,
            Command::Migrate => {
                panoptes_engine::storage::Store::connect(&settings.database_url()?, 1).await?;
                println!("database schema is at version {}", panoptes_engine::storage::migrations::latest_version());
                Ok(())
            }
        }
    })
}
