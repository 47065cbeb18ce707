//! Request bodies, read only once a request was routed and its key checked, and never past the size limit.

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt as _;
use http::{HeaderMap, StatusCode};

use super::error_response;

/// The largest request body the host accepts by default: the Functions host's own default
/// (Azure/azure-functions-host `src/WebJobs.Script.WebHost/Middleware/HttpRequestSizeMiddleware.cs`,
/// 104857600 bytes), which its `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` setting changes, as here.
pub(crate) const DEFAULT_MAX_BODY: usize = 100 * 1024 * 1024;

/// The setting that changes the limit, named as the Functions host names it.
pub(crate) const BODY_LIMIT_SETTING: &str = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT";

/// The 413 answer. The rest of the body stays unread, so the connection cannot carry another request: it says
/// `Connection: close` (RFC 9112 section 9.6), or a client that pools connections could write its next request
/// onto the one the server is closing and see a broken pipe instead of an answer.
fn too_large(limit: usize) -> Response {
    let mut response = error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("The request body is larger than the limit of {limit} bytes."),
    );
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// Reads the whole body, or answers 413 as soon as it is known to be over `limit`: at once for a declared
/// `Content-Length` over it (nothing is read), else when the bytes received pass it. The bytes land in one buffer
/// sized from the declared length, so a large body is held once, not once per chunk plus a joined copy.
pub(crate) async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Response> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|d| d > limit as u64) {
        return Err(too_large(limit));
    }
    let capacity = declared.map_or(0, |d| d as usize);
    let mut buffer = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(target: "host", "request body: {e}");
            error_response(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            )
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}
