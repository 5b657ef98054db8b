//! Attachment downloads: `data_url` is an ActiveStorage-style redirect URL
//! (`/rails/active_storage/blobs/redirect/<token>/<filename>`) answering 302
//! to `/blobs/<token>`, which serves the stored bytes with their content type.
//! Purged attachments (deleted messages/inboxes) answer 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Shared;

pub(crate) async fn redirect(
    State(shared): State<Arc<Shared>>,
    Path((token, _filename)): Path<(String, String)>,
) -> Response {
    if !shared
        .state
        .lock()
        .expect("state lock")
        .blobs
        .contains_key(&token)
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("{}/blobs/{token}", shared.base_url),
        )],
    )
        .into_response()
}

pub(crate) async fn serve(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
) -> Response {
    let blob = shared
        .state
        .lock()
        .expect("state lock")
        .blobs
        .get(&token)
        .cloned();
    match blob {
        Some(b) => ([(header::CONTENT_TYPE, b.content_type)], b.bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
