//! Handler options.

/// How the handler serves requests. Build with [`HandlerOptions::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandlerOptions {
    pub(crate) max_body_bytes: usize,
    pub(crate) route_prefix: String,
}

impl Default for HandlerOptions {
    fn default() -> Self {
        Self {
            // Orchestrator requests carry the whole history; keep room for long ones but refuse runaway bodies.
            max_body_bytes: 64 * 1024 * 1024,
            route_prefix: "api".to_owned(),
        }
    }
}

impl HandlerOptions {
    /// The defaults: 64 MiB body limit, route prefix `api`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests with a larger body are refused with 413.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The host's `extensions.http.routePrefix` (default `api`); forwarded HTTP requests arrive under it.
    pub fn with_route_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.route_prefix = prefix.into().trim_matches('/').to_owned();
        self
    }

    /// The body size limit in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The route prefix, without slashes.
    pub fn route_prefix(&self) -> &str {
        &self.route_prefix
    }
}
