//! What the embedding application decides: task hubs, refresh interval, page sizes, the name-scan budget and who
//! may call the API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Uri};

/// Decides whether a request to the JSON API may proceed, from its headers and URI (a key in a header or in the
/// query, say). Refused requests get a 401 and touch nothing.
pub type ApiGuard = Arc<dyn Fn(&HeaderMap, &Uri) -> bool + Send + Sync>;

/// Options for [`router`](crate::router) and [`start`](crate::start).
#[derive(Clone)]
#[non_exhaustive]
pub struct DashboardOptions {
    pub(crate) title: String,
    pub(crate) task_hubs: Vec<String>,
    pub(crate) refresh_interval: Duration,
    pub(crate) default_page_size: u32,
    pub(crate) max_page_size: u32,
    pub(crate) name_scan_limit: u32,
    pub(crate) guard: Option<ApiGuard>,
}

impl fmt::Debug for DashboardOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardOptions")
            .field("title", &self.title)
            .field("task_hubs", &self.task_hubs)
            .field("refresh_interval", &self.refresh_interval)
            .field("default_page_size", &self.default_page_size)
            .field("max_page_size", &self.max_page_size)
            .field("name_scan_limit", &self.name_scan_limit)
            .field("guard", &self.guard.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            title: "Durable Dashboard".to_owned(),
            task_hubs: Vec::new(),
            refresh_interval: Duration::from_secs(5),
            default_page_size: 50,
            max_page_size: 500,
            name_scan_limit: 10_000,
            guard: None,
        }
    }
}

impl DashboardOptions {
    /// Defaults: the client's own hub only, auto-refresh every 5 s, pages of 50 (at most 500), name filters scan
    /// at most 10,000 instances per request, and an open API.
    pub fn new() -> Self {
        Self::default()
    }

    /// The name shown in the header and the browser tab.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The task hubs the pages offer. The first is the client's own hub (its name is shown); the others are reached
    /// over the client's channel with [`DurableClient::with_task_hub`](durable_grpc::DurableClient::with_task_hub).
    /// No other hub can be asked for, so a page cannot create hubs on a backend that makes them on first use.
    pub fn with_task_hubs<I, S>(mut self, hubs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list: Vec<String> = Vec::new();
        for hub in hubs {
            let hub = hub.into();
            if !hub.trim().is_empty() && !list.contains(&hub) {
                list.push(hub);
            }
        }
        self.task_hubs = list;
        self
    }

    /// How often the pages refresh themselves while auto-refresh is on (at least one second).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The page size the instance and entity lists start with, and the largest one a request may ask for.
    pub fn with_page_sizes(mut self, default: u32, max: u32) -> Self {
        self.max_page_size = max.max(1);
        self.default_page_size = default.clamp(1, self.max_page_size);
        self
    }

    /// How many instances one request of a name-filtered list may read from the backend before it answers with
    /// what it found so far and a token to go on (at least 100). The protocol has no name filter, so this bounds
    /// the cost of one page.
    pub fn with_name_scan_limit(mut self, instances: u32) -> Self {
        self.name_scan_limit = instances.max(100);
        self
    }

    /// Checks every JSON API request before it runs; a refused one is answered 401. The pages and their assets
    /// hold no data and stay open, so that a browser can load them and then ask for a key.
    pub fn with_api_guard(
        mut self,
        guard: impl Fn(&HeaderMap, &Uri) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.guard = Some(Arc::new(guard));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_kept() {
        let options = DashboardOptions::new()
            .with_page_sizes(0, 0)
            .with_name_scan_limit(1)
            .with_refresh_interval(Duration::ZERO)
            .with_task_hubs(["a", " ", "b", "a"]);
        assert_eq!(options.max_page_size, 1);
        assert_eq!(options.default_page_size, 1);
        assert_eq!(options.name_scan_limit, 100);
        assert_eq!(options.refresh_interval, Duration::from_secs(1));
        assert_eq!(options.task_hubs, ["a", "b"]);
        let options = DashboardOptions::new().with_page_sizes(900, 200);
        assert_eq!(options.default_page_size, 200);
    }
}
