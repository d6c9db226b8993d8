//! A PostgreSQL cluster of one test's own (Debian's server binaries, as scripts/pg uses), for tests
//! that need a server set up differently from the suite's: with TLS on, or none. Stopped on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest Debian PostgreSQL's `bin` directory.
pub fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's PostgreSQL (scripts/setup.sh installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version")
}

fn running_as_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// A PostgreSQL server tool run as the `postgres` user when we are root (the server refuses root).
pub fn as_pg(tool: &str) -> Command {
    let bin = pg_bin().join(tool);
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// Runs `c`, which must succeed; its standard output.
pub fn run(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Gives `path` to the `postgres` user when we are root (the server reads its files as that user).
pub fn give_to_postgres(path: &Path) {
    if running_as_root() {
        run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(path), "chown to postgres");
    }
}

/// The server certificate and key of a cluster with TLS on.
pub struct ServerTls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    /// Refuse TCP connections without TLS (pg_hba `hostssl` only), as managed databases do.
    pub only_tls: bool,
}

pub struct Cluster {
    dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// initdb (trust authentication, superuser `postgres`) into `dir` and start on 127.0.0.1.
    pub fn start(dir: &Path, tls: Option<ServerTls<'_>>) -> Cluster {
        std::fs::create_dir_all(dir).expect("cluster dir");
        give_to_postgres(dir);
        let data = dir.join("data");
        run(
            as_pg("initdb").arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]),
            "initdb",
        );
        let port = super::free_port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            super::path_str(dir)
        );
        if let Some(tls) = tls {
            // The server wants its key readable by itself only.
            for (from, name) in [(tls.cert, "server.crt"), (tls.key, "server.key")] {
                std::fs::copy(from, data.join(name)).expect("copy the server's certificate and key");
            }
            give_to_postgres(&data);
            std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .expect("chmod server.key");
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
            if tls.only_tls {
                let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";
                std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
                give_to_postgres(&data);
            }
        }
        let cluster = Cluster { dir: dir.to_path_buf(), port };
        run(
            as_pg("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "start PostgreSQL",
        );
        cluster
    }

    /// Creates database `name` (through the Unix socket, which needs no TLS).
    pub fn create_database(&self, name: &str) {
        run(
            as_pg("createdb").arg("-h").arg(&self.dir).args(["-p", &self.port.to_string(), "-U", "postgres", name]),
            "createdb",
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_pg("pg_ctl").arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "-w", "stop"]).output();
        // A data directory is tens of MB; it stays (with server.log) only when the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
