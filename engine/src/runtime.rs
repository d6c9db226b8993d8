//! The ONNX Runtime environment (loaded once per process from the project-local shared library) and
//! the creation of inference sessions for the models.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("ONNX Runtime library not found at {}: run scripts/setup.sh or set ORT_DYLIB_PATH", path.display())]
    RuntimeMissing { path: PathBuf },
    #[error("could not load ONNX Runtime from {}: {message}", path.display())]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("model file {} is missing: run models/fetch.sh", path.display())]
    ModelMissing { path: PathBuf },
    #[error("model file {} could not be loaded (corrupt or not an ONNX model?): {message}", path.display())]
    ModelLoad { path: PathBuf, message: String },
    #[error("model {model} has an unexpected interface: {message}")]
    Interface { model: String, message: String },
    #[error("embedder {name:?}: {message}")]
    EmbedderConfig { name: String, message: String },
    #[error("inference failed in {model}: {message}")]
    Inference { model: &'static str, message: String },
}

/// Where inference runs. `cuda` needs an ONNX Runtime built with the CUDA provider (the
/// `onnxruntime-gpu` wheel) and a GPU; without them sessions fall back to the CPU with one warning.
#[derive(Clone, Copy, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Provider::Cpu),
            "cuda" => Ok(Provider::Cuda),
            other => Err(format!("unknown execution provider {other:?} (expected cpu or cuda)")),
        }
    }
}

/// The CUDA fallback is announced once per process, not once per session.
static CUDA_FALLBACK_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Threads ONNX Runtime may use inside one operator. One by default: these models' operators are
    /// too small to gain from a second thread, whose hand-offs cost more CPU than they save (2
    /// cameras on 2 cores: 16.7 % of a core per camera with 1, 22.5 % with 2, and lower latency).
    /// Parallelism comes from several inference workers and cameras instead.
    pub intra_threads: usize,
    pub provider: Provider,
    /// Let ONNX Runtime's idle threads spin-wait for work. Lower latency per call, but between
    /// frames the spinning burns CPU that other cameras need: off by default.
    pub spinning: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { intra_threads: 1, provider: Provider::Cpu, spinning: false }
    }
}

/// A loaded ONNX Runtime: cheap to clone, shared by every session of the process.
#[derive(Clone)]
pub struct Runtime {
    env: Environment,
}

static RUNTIME: OnceLock<Result<Runtime, (PathBuf, String)>> = OnceLock::new();

impl Runtime {
    /// Loads ONNX Runtime from `library` (or from `ORT_DYLIB_PATH` when set). The library can be loaded
    /// once per process; later calls return the first result.
    pub fn load(library: &Path) -> Result<Runtime, ModelError> {
        let path = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| library.to_path_buf());
        if !path.exists() {
            return Err(ModelError::RuntimeMissing { path });
        }
        let loaded = RUNTIME.get_or_init(|| {
            let build = || -> Result<Environment, String> {
                ort::init_from(&path)
                    .map_err(|e| e.to_string())?
                    .with_name("panoptes")
                    .build()
                    .map_err(|e| e.to_string())
            };
            build().map(|env| Runtime { env }).map_err(|m| (path.clone(), m))
        });
        match loaded {
            Ok(rt) => Ok(rt.clone()),
            Err((path, message)) => Err(ModelError::RuntimeLoad { path: path.clone(), message: message.clone() }),
        }
    }

    /// Opens a model file as an inference session.
    pub fn session(&self, path: &Path, settings: &SessionSettings) -> Result<Session, ModelError> {
        self.session_on(path, settings).map(|(session, _)| session)
    }

    /// Opens a model file as an inference session and says which provider it runs on (`cuda` may
    /// have fallen back to `cpu`).
    pub fn session_on(&self, path: &Path, settings: &SessionSettings) -> Result<(Session, Provider), ModelError> {
        if !path.is_file() {
            return Err(ModelError::ModelMissing { path: path.to_path_buf() });
        }
        let load_err = |message: String| ModelError::ModelLoad { path: path.to_path_buf(), message };
        let builder = Session::builder(&self.env).map_err(|e| load_err(e.to_string()))?;
        let mut builder = builder
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load_err(e.to_string()))?
            .with_intra_threads(settings.intra_threads.max(1))
            .map_err(|e| load_err(e.to_string()))?
            .with_intra_op_spinning(settings.spinning)
            .map_err(|e| load_err(e.to_string()))?;
        let mut provider = Provider::Cpu;
        if settings.provider == Provider::Cuda {
            use ort::ep::ExecutionProvider as _;
            let outcome = match ort::ep::CUDA::is_available() {
                Ok(true) => ort::ep::CUDA::default().register(&mut builder).map_err(|e| e.to_string()),
                Ok(false) => Err("this ONNX Runtime library was built without the CUDA provider".to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => provider = Provider::Cuda,
                Err(reason) => {
                    if !CUDA_FALLBACK_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(%reason, "CUDA requested but unavailable; inference runs on the CPU");
                    }
                }
            }
        }
        let session = builder.commit_from_file(path).map_err(|e| load_err(e.to_string()))?;
        Ok((session, provider))
    }
}

/// Name of the `index`-th input or output of a session, checked to exist.
pub(crate) fn io_name(session: &Session, output: bool, index: usize, model: &str) -> Result<String, ModelError> {
    let list = if output { session.outputs() } else { session.inputs() };
    list.get(index).map(|o| o.name().to_string()).ok_or_else(|| ModelError::Interface {
        model: model.to_string(),
        message: format!("expected at least {} {}", index + 1, if output { "outputs" } else { "inputs" }),
    })
}
