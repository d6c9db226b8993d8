//! The operators' console: one page, a stylesheet and a script, compiled into the binary and served
//! at `/` without a key (they hold no data; the page asks for a key and sends it with every API
//! call). No CDN, no build step. The policy keeps the page to its own origin.

use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// The console's own paths (open: see `auth::required_role`).
pub const PATHS: [&str; 3] = ["/", "/console.js", "/console.css"];

fn asset(body: &'static str, content_type: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; \
             connect-src 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

pub async fn index() -> HttpResponse {
    asset(INDEX, "text/html; charset=utf-8")
}

pub async fn script() -> HttpResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub async fn style() -> HttpResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_is_small_and_fetches_nothing_from_elsewhere() {
        let total = INDEX.len() + SCRIPT.len() + STYLE.len();
        assert!(total < 200 * 1024, "the console weighs {total} bytes");
        for text in [INDEX, SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"), "an outside URL in the console");
        }
    }
}
