//! Which backend and task hub a call addresses: the `Durable-TaskHub` and `Durable-ConnectionName` headers, read
//! the way `TaskHubGrpcServer.GetAttribute` reads them (Azure/azure-functions-durable-extension
//! `src/WebJobs.Extensions.DurableTask/TaskHubGrpcServer.cs`). Any other header, such as the `taskhub` the Python
//! SDK sends, is ignored as the extension ignores it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use durable_grpc::{ConnectionOptions, DurableClient};
use durable_proto as proto;
use proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::EndpointConfig;

const TASK_HUB_HEADER: &str = "durable-taskhub";
const CONNECTION_HEADER: &str = "durable-connectionname";

/// The host's own backend client, plus clients for other connections made on first use.
#[derive(Debug)]
pub(super) struct Routes {
    pub(super) config: EndpointConfig,
    backend: DurableClient,
    /// Clients for connections named by `Durable-ConnectionName`, by setting name, on the app's hub.
    others: Mutex<HashMap<String, DurableClient>>,
}

/// Where one call goes: a client on the right connection and hub, and the caller's deadline.
#[derive(Debug, Clone)]
pub(super) struct Target {
    client: DurableClient,
    deadline: Option<Duration>,
}

impl Target {
    /// The backend's stub.
    pub(super) fn stub(&self) -> TaskHubSidecarServiceClient<Channel> {
        self.client.raw_stub()
    }

    /// The message with the host's headers and token, and the caller's deadline.
    pub(super) async fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = self.client.request(message).await.map_err(|e| match e {
            durable_grpc::Error::Credential(reason) => Status::unavailable(format!(
                "the local host could not get a token for the scheduler: {reason}"
            )),
            other => Status::unavailable(format!(
                "the local host cannot reach the scheduler: {other}"
            )),
        })?;
        if let Some(deadline) = self.deadline {
            request.set_timeout(deadline);
        }
        Ok(request)
    }
}

impl Routes {
    pub(super) fn new(backend: DurableClient, config: EndpointConfig) -> Self {
        Self {
            config,
            backend,
            others: Mutex::new(HashMap::new()),
        }
    }

    /// The target of a call, from its headers.
    pub(super) fn target<T>(&self, request: &Request<T>) -> Result<Target, Status> {
        let hub = header(request, TASK_HUB_HEADER, "Durable-TaskHub")?;
        let connection = header(request, CONNECTION_HEADER, "Durable-ConnectionName")?;
        let client = match connection {
            Some(name) if name != self.config.durable.connection_name => self.connection(&name)?,
            // Absent, or the name of the app's own storage connection: the backend the host itself uses.
            _ => self.backend.clone(),
        };
        let client = match hub {
            Some(hub) if hub != self.config.hub => client.with_task_hub(&hub).map_err(|e| {
                Status::invalid_argument(format!("the Durable-TaskHub header cannot be used: {e}"))
            })?,
            _ => client,
        };
        Ok(Target {
            client,
            deadline: deadline(request),
        })
    }

    /// A client for the scheduler whose connection string is in the app setting `name`, made once.
    fn connection(&self, name: &str) -> Result<DurableClient, Status> {
        let mut others = self.others.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = others.get(name) {
            return Ok(client.clone());
        }
        let value = self
            .config
            .settings
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                // What the extension reports comes from the storage provider and is not public; the code is the
                // one its interceptor gives an unhandled exception.
                Status::unknown(format!(
                    "the Durable-ConnectionName header names the app setting '{name}', which is not set (in \
                     local.settings.json Values or the environment); it must hold a Durable Task Scheduler \
                     connection string"
                ))
            })?;
        let client = ConnectionOptions::from_connection_string(&value)
            .map(|options| options.with_task_hub(self.config.hub.clone()))
            .and_then(|options| DurableClient::new(&options))
            .map_err(|e| {
                Status::unknown(format!(
                    "the app setting '{name}' (named by the Durable-ConnectionName header) is not a usable \
                     Durable Task Scheduler connection string: {e}"
                ))
            })?;
        others.insert(name.to_owned(), client.clone());
        Ok(client)
    }
}

/// A routing header's value; absent or blank counts as absent, as the extension treats null, empty and
/// whitespace alike.
fn header<T>(request: &Request<T>, key: &str, display: &str) -> Result<Option<String>, Status> {
    let Some(value) = request.metadata().get(key) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Status::invalid_argument(format!("the {display} header is not ASCII text")))?;
    Ok((!text.trim().is_empty()).then(|| text.to_owned()))
}

/// The longest deadline `grpc-timeout` can carry (eight digits of hours); tonic refuses to write a longer one.
const LONGEST_DEADLINE: Duration = Duration::from_secs(99_999_999 * 3600);

/// The caller's deadline (`grpc-timeout`), passed on so that the backend gives up when the caller does. A longer
/// value than the format allows (a caller may write more than its eight digits) is passed on as the longest one.
pub(super) fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    let deadline = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(deadline.min(LONGEST_DEADLINE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &str) -> Request<()> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("grpc-timeout", value.parse().unwrap());
        request
    }

    #[test]
    fn caller_deadlines_are_read_and_kept_representable() {
        assert_eq!(
            deadline(&with_timeout("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(deadline(&with_timeout("3S")), Some(Duration::from_secs(3)));
        assert_eq!(deadline(&with_timeout("")), None);
        assert_eq!(deadline(&with_timeout("12x")), None);
        // Longer than the gRPC format allows: passed on as the longest deadline it can carry.
        for huge in [
            "999999999999H",
            "18446744073709551615M",
            "99999999999999999S",
        ] {
            let d = deadline(&with_timeout(huge)).unwrap();
            let mut onward = Request::new(());
            onward.set_timeout(d);
            assert!(d >= Duration::from_secs(99_999_999 * 3600), "{huge}");
        }
    }
}
