//! PostgreSQL's own client tools (pg_dump, pg_restore, psql) for `panoptes backup` and `restore`,
//! given the database through libpq's environment: the password in `PGPASSWORD`, never on a command
//! line, and `sslmode`/`sslrootcert` as `PGSSLMODE`/`PGSSLROOTCERT`, which libpq applies itself.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use panoptes_engine::storage::ConnInfo;

/// `tool` from `$PANOPTES_PG_BIN` (as scripts/pg), else the `PATH`, else the newest Debian
/// `/usr/lib/postgresql/*/bin`.
pub fn find(tool: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PANOPTES_PG_BIN") {
        let p = PathBuf::from(dir).join(tool);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{tool} is not in PANOPTES_PG_BIN ({})", p.display());
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file()) {
            return Ok(p);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin").join(tool)))
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, p)) => Ok(p),
        None => bail!(
            "{tool} not found (PATH, /usr/lib/postgresql/*/bin): install PostgreSQL's client tools \
             (Debian: postgresql-client), of the server's major version or newer"
        ),
    }
}

/// `tool` set up to reach the database of `info`: libpq's variables of the caller's environment
/// removed (they would mix with ours), ours set, and no password prompt.
pub fn command(tool: &str, info: &ConnInfo) -> Result<Command> {
    let mut c = Command::new(find(tool)?);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PG")) {
            c.env_remove(key);
        }
    }
    c.envs(info.libpq_environment());
    Ok(c)
}

/// Runs `c` to its end; its standard error becomes the error when it fails.
pub fn run(mut c: Command, what: &str) -> Result<()> {
    let out = c.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// `tool --version`, e.g. "pg_dump (PostgreSQL) 15.10".
pub fn version(tool: &str) -> Result<String> {
    let out = Command::new(find(tool)?).arg("--version").output().with_context(|| format!("starting {tool}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
