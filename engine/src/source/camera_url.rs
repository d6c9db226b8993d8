//! Camera URLs: validation and credential handling. Credentials are taken out of the URL once, passed
//! to the RTSP client separately, and never appear in logs, metrics or API output.

use url::Url;

use super::SourceError;

/// A camera URL split into what may be shown and what must not be.
#[derive(Clone)]
pub struct CameraUrl {
    /// The URL without user name or password.
    pub url: Url,
    pub credentials: Option<retina::client::Credentials>,
}

impl std::fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CameraUrl({})", self.url)
    }
}

impl CameraUrl {
    /// Accepts rtsp:// and rtsps:// URLs with a host.
    pub fn parse(raw: &str) -> Result<CameraUrl, SourceError> {
        let bad = |reason: &str| SourceError::BadUrl { url: redact(raw), reason: reason.to_string() };
        let mut url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "rtsp" | "rtsps") {
            return Err(bad("only rtsp:// and rtsps:// camera URLs are supported"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the URL has no host"));
        }
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| percent_decode(s);
            Some(retina::client::Credentials {
                username: decode(url.username()),
                password: decode(url.password().unwrap_or("")),
            })
        };
        // Infallible for URLs with a host; ignore the unit errors.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(CameraUrl { url, credentials })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `raw` names an RTSP stream (rtsp:// or rtsps://, any case) rather than a file.
pub fn is_rtsp(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    lower.starts_with("rtsp://") || lower.starts_with("rtsps://")
}

/// Any URL-like string with its password (or whole user-info) replaced, for messages.
pub fn redact(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else { return raw.to_string() };
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***@{}", &raw[..scheme_end], &rest[at + 1..]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_decoded() {
        let c = CameraUrl::parse("rtsp://admin:p%40ss@10.0.0.5:554/stream1").unwrap();
        assert_eq!(c.url.as_str(), "rtsp://10.0.0.5:554/stream1");
        let cr = c.credentials.unwrap();
        assert_eq!((cr.username.as_str(), cr.password.as_str()), ("admin", "p@ss"));
        assert!(!format!("{:?}", CameraUrl::parse("rtsp://u:secret@h/x").unwrap()).contains("secret"));
    }

    #[test]
    fn other_schemes_and_garbage_are_refused_without_echoing_secrets() {
        for raw in ["http://u:secret@h/x", "rtsp://", "not a url", "rtsp://u:secret@/x"] {
            let e = CameraUrl::parse(raw).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn redact_hides_user_info_only() {
        assert_eq!(redact("rtsp://u:secret@h:554/a?b=c"), "rtsp://***@h:554/a?b=c");
        assert_eq!(redact("rtsp://h/a@b"), "rtsp://h/a@b");
        assert_eq!(redact("plain"), "plain");
    }
}
