//! Reading `multipart/form-data` uploads with a byte limit over the whole request: text fields by
//! name, and every file part (photos) in order.

use std::collections::HashMap;

use actix_multipart::Multipart;
use futures::StreamExt;

use crate::error::ApiError;

/// One uploaded file.
pub struct Upload {
    pub field: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

impl Upload {
    /// How error messages name this file.
    pub fn label(&self, index: usize) -> String {
        match &self.filename {
            Some(f) => format!("photo {} ({f})", index + 1),
            None => format!("photo {}", index + 1),
        }
    }
}

#[derive(Default)]
pub struct Form {
    pub texts: HashMap<String, String>,
    pub files: Vec<Upload>,
}

/// Text fields larger than this are refused (names, metadata).
const MAX_TEXT_FIELD: usize = 64 * 1024;

pub async fn read(mut payload: Multipart, limit: usize) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut total = 0usize;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request("invalid_multipart", e.to_string()))?;
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_string);
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_multipart", e.to_string()))?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::PayloadTooLarge(format!("the upload is larger than the {limit} bytes allowed")));
            }
            data.extend_from_slice(&chunk);
        }
        if filename.is_some() {
            form.files.push(Upload { field: name, filename, bytes: data });
        } else {
            if data.len() > MAX_TEXT_FIELD {
                return Err(ApiError::PayloadTooLarge(format!("field {name:?} is larger than {MAX_TEXT_FIELD} bytes")));
            }
            let text = String::from_utf8(data)
                .map_err(|_| ApiError::bad_request("invalid_multipart", format!("field {name:?} is not UTF-8 text")))?;
            form.texts.insert(name, text);
        }
    }
    Ok(form)
}
