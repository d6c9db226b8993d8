//! The OpenAPI 3 document of this API (`api/openapi/openapi.json`, kept in step with `routes::ROUTES`
//! by a test), served at `/api/v1/openapi.json`.

use actix_web::HttpResponse;

pub const DOCUMENT: &str = include_str!("../openapi/openapi.json");

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::DOCUMENT;
    use crate::routes::ROUTES;

    #[test]
    fn the_document_describes_exactly_the_registered_routes() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("the OpenAPI document is JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item") {
                if method != "parameters" {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let registered: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(documented, registered);
    }
}
