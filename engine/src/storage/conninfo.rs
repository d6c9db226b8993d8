//! A database URL read as libpq reads it. tokio-postgres parses URLs and `key=value` strings itself but
//! knows only `sslmode` disable, prefer and require, and no `sslrootcert`: those two are taken out here
//! and the rest is handed to it unchanged (hosts, ports, `target_session_attrs`, …).

use std::path::PathBuf;
use std::str::FromStr;

use super::tls::{DatabaseTls, SslMode, TlsSetupError};
use super::StorageError;

/// A parsed database URL: tokio-postgres' configuration plus the TLS settings it does not know.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    /// `sslrootcert` as written in the URL.
    root_cert: Option<PathBuf>,
}

impl ConnInfo {
    pub fn parse(url: &str) -> Result<ConnInfo, StorageError> {
        let split = if url.starts_with("postgresql://") || url.starts_with("postgres://") {
            split_url(url)
        } else {
            split_key_values(url)
        }
        .map_err(StorageError::BadUrl)?;
        let mut config = tokio_postgres::Config::from_str(&split.rest)
            .map_err(|e| StorageError::BadUrl(crate::error_chain::error_chain(&e)))?;
        let ssl_mode = match &split.ssl_mode {
            Some(m) => m.parse::<SslMode>().map_err(StorageError::BadUrl)?,
            None => SslMode::Prefer,
        };
        config.ssl_mode(ssl_mode.negotiation());
        Ok(ConnInfo { config, ssl_mode, root_cert: split.root_cert.map(PathBuf::from) })
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The rustls connector for this URL's `sslmode` and `sslrootcert` (reads the CA file).
    pub fn tls(&self) -> Result<DatabaseTls, TlsSetupError> {
        DatabaseTls::new(self.ssl_mode, self.root_cert.as_deref())
    }

    /// The servers this URL names and its sslmode, as `host:port, … (sslmode=…)`, for messages (no
    /// user, no password).
    pub fn servers(&self) -> String {
        let ports = self.config.get_ports();
        let port = |i: usize| ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432);
        let mut hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| match h {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{}", port(i)),
                tokio_postgres::config::Host::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), port(i)),
            })
            .collect();
        if hosts.is_empty() {
            hosts = self.config.get_hostaddrs().iter().enumerate().map(|(i, a)| format!("{a}:{}", port(i))).collect();
        }
        format!("{} (sslmode={})", hosts.join(", "), self.ssl_mode)
    }

    /// The connection as libpq's environment variables (PGHOST, PGSSLMODE, PGPASSWORD, …), for
    /// PostgreSQL's own tools: the password never appears on a command line, and libpq applies the
    /// same `sslmode` and `sslrootcert` natively.
    pub fn libpq_environment(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        let mut env = Vec::new();
        let join = |items: Vec<String>| items.join(",");
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(dir) => dir.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            env.push(("PGHOST", join(hosts)));
        }
        if !c.get_hostaddrs().is_empty() {
            env.push(("PGHOSTADDR", join(c.get_hostaddrs().iter().map(|a| a.to_string()).collect())));
        }
        if !c.get_ports().is_empty() {
            env.push(("PGPORT", join(c.get_ports().iter().map(|p| p.to_string()).collect())));
        }
        if let Some(user) = c.get_user() {
            env.push(("PGUSER", user.to_string()));
        }
        if let Some(password) = c.get_password() {
            env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
        }
        if let Some(db) = c.get_dbname() {
            env.push(("PGDATABASE", db.to_string()));
        }
        if let Some(options) = c.get_options() {
            env.push(("PGOPTIONS", options.to_string()));
        }
        if let Some(name) = c.get_application_name() {
            env.push(("PGAPPNAME", name.to_string()));
        }
        if let Some(t) = c.get_connect_timeout() {
            env.push(("PGCONNECT_TIMEOUT", t.as_secs().max(1).to_string()));
        }
        if c.get_target_session_attrs() == tokio_postgres::config::TargetSessionAttrs::ReadWrite {
            env.push(("PGTARGETSESSIONATTRS", "read-write".to_string()));
        }
        env.push(("PGSSLMODE", self.ssl_mode.to_string()));
        if let Some(root) = &self.root_cert {
            env.push(("PGSSLROOTCERT", root.display().to_string()));
        }
        env
    }
}

/// A URL or `key=value` string with `sslmode` and `sslrootcert` taken out.
#[derive(Debug, Default, PartialEq)]
struct Split {
    rest: String,
    ssl_mode: Option<String>,
    root_cert: Option<String>,
}

/// `postgresql://…?a=b&sslmode=…&sslrootcert=…`: the query's TLS parameters taken out (percent-decoded).
fn split_url(url: &str) -> Result<Split, String> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok(Split { rest: url.to_string(), ..Split::default() });
    };
    let mut split = Split::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key)?.as_str() {
            "sslmode" => split.ssl_mode = Some(percent_decode(value)?),
            "sslrootcert" => split.root_cert = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    split.rest = if kept.is_empty() { head.to_string() } else { format!("{head}?{}", kept.join("&")) };
    Ok(split)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else { return Err(format!("bad percent-encoding in {s:?}")) };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// `host=… sslmode=verify-full sslrootcert='/etc/ca.pem' …` (libpq's quoting: single quotes, and a
/// backslash escapes the next character), re-quoted without the TLS parameters.
fn split_key_values(s: &str) -> Result<Split, String> {
    let mut split = Split::default();
    let mut kept = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("connection parameter {key:?} has no '=' after it"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of {key:?} has no closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        match key.as_str() {
            "sslmode" => split.ssl_mode = Some(value),
            "sslrootcert" => split.root_cert = Some(value),
            _ => kept.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))),
        }
    }
    split.rest = kept.join(" ");
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url_and_the_rest_stays() {
        let s = split_url("postgresql://u:p@h1:1,h2:2/db?sslmode=verify-full&target_session_attrs=read-write&sslrootcert=%2Fetc%2Fca%20x.pem")
            .unwrap();
        assert_eq!(s.rest, "postgresql://u:p@h1:1,h2:2/db?target_session_attrs=read-write");
        assert_eq!(s.ssl_mode.as_deref(), Some("verify-full"));
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca x.pem"));
        let s = split_url("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(s.rest, "postgresql://h/db");
        assert!(split_url("postgresql://h/db?sslrootcert=%zz").is_err());
    }

    #[test]
    fn key_value_strings_are_split_with_libpq_quoting() {
        let s = split_key_values(r"host=h  port = 5433 sslmode=verify-ca sslrootcert='/a b/c\'s.pem' password=p\ q")
            .unwrap();
        assert_eq!(s.ssl_mode.as_deref(), Some("verify-ca"));
        assert_eq!(s.root_cert.as_deref(), Some("/a b/c's.pem"));
        let config: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_password(), Some(&b"p q"[..]));
        assert!(split_key_values("host='h").is_err());
        assert!(split_key_values("host").is_err());
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_unknown_modes_are_refused() {
        let c = ConnInfo::parse("postgresql://h/db").unwrap();
        assert_eq!(c.ssl_mode(), SslMode::Prefer);
        let c = ConnInfo::parse("postgresql://h/db?sslmode=verify-full").unwrap();
        assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(c.config().get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        let err = ConnInfo::parse("postgresql://h/db?sslmode=sometimes").unwrap_err().to_string();
        assert!(err.contains("sslmode") && err.contains("sometimes"), "{err}");
    }

    #[test]
    fn libpq_gets_the_same_connection_with_the_password_in_its_environment() {
        let c = ConnInfo::parse(
            "postgresql://u:s%40cret@h1:1,h2:2/db?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=/ca.pem",
        )
        .unwrap();
        let env = c.libpq_environment();
        let get = |k: &str| env.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("h1,h2"));
        assert_eq!(get("PGPORT"), Some("1,2"));
        assert_eq!(get("PGUSER"), Some("u"));
        assert_eq!(get("PGPASSWORD"), Some("s@cret"));
        assert_eq!(get("PGDATABASE"), Some("db"));
        assert_eq!(get("PGSSLMODE"), Some("verify-full"));
        assert_eq!(get("PGSSLROOTCERT"), Some("/ca.pem"));
        assert_eq!(get("PGTARGETSESSIONATTRS"), Some("read-write"));
        assert_eq!(c.servers(), "h1:1, h2:2 (sslmode=verify-full)");
    }
}
