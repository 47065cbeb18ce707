//! Errors: the public one (starting a server) and the API's, which become short JSON answers.

use std::net::SocketAddr;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// Why [`start`](crate::start) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// What an API call answers instead of its result. The message is for the person at the browser: it says what
/// was wrong with the request or what state the instance is in, never how the server failed inside.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request itself is wrong (a bad filter, token or body).
    #[error("{0}")]
    BadRequest(String),
    /// The guard refused the request.
    #[error("this dashboard needs a key")]
    Unauthorized,
    /// No such instance or entity.
    #[error("{0}")]
    NotFound(String),
    /// The backend refused the operation for the instance's current state (or its arguments).
    #[error("{0}")]
    Refused(String),
    /// The backend could not be reached, or failed; details are logged, not returned.
    #[error("the backend could not answer")]
    Backend,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Refused(_) => StatusCode::CONFLICT,
            Self::Backend => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<durable_grpc::Error> for ApiError {
    fn from(error: durable_grpc::Error) -> Self {
        use durable_grpc::Error as E;
        match error {
            // The backend's own words about the request or the instance's state are meant for its caller.
            E::NotFound(message) => Self::NotFound(non_empty(message, "not found")),
            E::InvalidArgument(message) | E::AlreadyExists(message) => {
                Self::Refused(non_empty(message, "the backend refused the operation"))
            }
            E::Payload { what, .. } => Self::BadRequest(format!("{what} is not valid JSON")),
            E::MessageTooLarge { bytes, limit } => Self::BadRequest(format!(
                "the request is {bytes} bytes; the message size limit is {limit} bytes"
            )),
            other => {
                tracing::warn!(target: "dashboard", "backend call failed: {other}");
                Self::Backend
            }
        }
    }
}

fn non_empty(message: String, fallback: &str) -> String {
    if message.trim().is_empty() {
        fallback.to_owned()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_say_nothing_about_the_inside() {
        let error = ApiError::from(durable_grpc::Error::Rpc {
            code: tonic::Code::Internal,
            message: "database disk image is malformed at /var/lib/x.db".into(),
        });
        assert_eq!(error.to_string(), "the backend could not answer");
        assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
        let error = ApiError::from(durable_grpc::Error::Unavailable(
            "tcp connect error 10.0.0.7:8080".into(),
        ));
        assert_eq!(error.to_string(), "the backend could not answer");
    }

    #[test]
    fn refusals_keep_the_backends_reason() {
        let error = ApiError::from(durable_grpc::Error::InvalidArgument(
            "only failed instances can be rewound".into(),
        ));
        assert_eq!(error.status(), StatusCode::CONFLICT);
        assert_eq!(error.to_string(), "only failed instances can be rewound");
        let error = ApiError::from(durable_grpc::Error::NotFound(String::new()));
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(error.to_string(), "not found");
    }
}
