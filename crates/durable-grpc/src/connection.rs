//! Where to connect and how: endpoint, task hub header, credential, and the gRPC channel built from them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use durable_proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::auth::{TokenCache, credential_from_connection_string};
use crate::connection_string::ConnectionString;
use crate::error::{Error, Result};

/// The header DTS reads the task hub from.
pub const TASK_HUB_HEADER: &str = "taskhub";
/// The header the Functions host's local gRPC endpoint reads the task hub from.
pub const FUNCTIONS_TASK_HUB_HEADER: &str = "durable-taskhub";
/// The header the Functions host's local gRPC endpoint reads the connection (app setting) name from.
pub const FUNCTIONS_CONNECTION_NAME_HEADER: &str = "durable-connectionname";

/// The default limit on one gRPC message, in either direction: 64 MiB, the largest message the embedded backend
/// accepts or sends. (Microsoft's SDKs keep gRPC's default of 4 MiB for what they receive and send without a
/// limit; this worker takes whole histories inline unless it announces history streaming, so it allows more.)
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The longest timeout a call can carry: gRPC's `grpc-timeout` holds at most 8 digits, so 99,999,999 hours
/// (about 11,400 years). Longer timeouts, `Duration::MAX` included, are treated as this one: no practical limit.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// How to reach a `TaskHubSidecarService`: DTS, its emulator, the embedded backend or the Functions host.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    endpoint: String,
    task_hub: Option<String>,
    task_hub_header: String,
    credential: Option<Arc<dyn TokenCredential>>,
    scope: String,
    user_agent: String,
    connect_timeout: Duration,
    extra_headers: Vec<(String, String)>,
    max_message_bytes: usize,
}

impl fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionOptions")
            .field("endpoint", &self.endpoint)
            .field("task_hub", &self.task_hub)
            .field("task_hub_header", &self.task_hub_header)
            .field("authenticated", &self.credential.is_some())
            .field("scope", &self.scope)
            .field("user_agent", &self.user_agent)
            .field("extra_headers", &self.extra_headers)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

impl ConnectionOptions {
    /// An unauthenticated connection to `endpoint` (`https://` is added when it has no scheme).
    pub fn new(endpoint: impl AsRef<str>) -> Self {
        Self::from_parsed(ConnectionString::from_endpoint(endpoint.as_ref()), None)
    }

    /// Parses a scheduler connection string (or a bare URL) and builds the credential it names.
    pub fn from_connection_string(connection_string: &str) -> Result<Self> {
        let parsed = ConnectionString::parse(connection_string)?;
        let credential = credential_from_connection_string(&parsed)?;
        Ok(Self::from_parsed(parsed, credential))
    }

    fn from_parsed(parsed: ConnectionString, credential: Option<Arc<dyn TokenCredential>>) -> Self {
        Self {
            scope: parsed.token_scope(),
            endpoint: parsed.endpoint,
            task_hub: parsed.task_hub,
            task_hub_header: TASK_HUB_HEADER.to_owned(),
            credential,
            user_agent: format!("durable-rust/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            extra_headers: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Sets the task hub sent with every call.
    pub fn with_task_hub(mut self, task_hub: impl Into<String>) -> Self {
        self.task_hub = Some(task_hub.into());
        self
    }

    /// Sets the header name the task hub travels in (`taskhub` for DTS; [`FUNCTIONS_TASK_HUB_HEADER`] for the
    /// Functions host's local endpoint).
    pub fn with_task_hub_header(mut self, header: impl Into<String>) -> Self {
        self.task_hub_header = header.into().to_ascii_lowercase();
        self
    }

    /// Authenticates with any Azure credential; tokens are requested for the scheduler's scope.
    pub fn with_credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Overrides the token scope (default `https://durabletask.io/.default`).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Overrides the `x-user-agent` header (default `durable-rust/<version>`).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Adds a header sent with every call, e.g. [`FUNCTIONS_CONNECTION_NAME_HEADER`] for the Functions host's local
    /// endpoint. The name is lower-cased (gRPC metadata keys are lower case); an invalid name or a value that is not
    /// printable ASCII makes the client constructors fail.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Bounds how long establishing the connection may take (default 30 s; at most [`MAX_TIMEOUT`]).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// The largest gRPC message the client or worker sends or accepts, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE_BYTES`]). A larger message fails its call with `OUT_OF_RANGE` rather than being read
    /// into memory; zero is refused when the client or worker is built.
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// The message size limit (see [`ConnectionOptions::with_max_message_bytes`]).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The task hub, if any.
    pub fn task_hub(&self) -> Option<&str> {
        self.task_hub.as_deref()
    }

    /// Builds the channel and header set. The channel connects lazily, so this succeeds without a server.
    pub(crate) fn connect(&self, worker_id: Option<&str>) -> Result<Connection> {
        if self.max_message_bytes == 0 {
            return Err(Error::InvalidArgument(
                "the gRPC message size limit must be above zero".into(),
            ));
        }
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| Error::Transport(format!("invalid endpoint {:?}: {e}", self.endpoint)))?
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        if self.endpoint.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_enabled_roots())
                .map_err(|e| Error::Transport(format!("TLS setup for {:?}: {e}", self.endpoint)))?;
        }
        let channel = endpoint.connect_lazy();

        let mut headers = Vec::new();
        if let Some(hub) = &self.task_hub {
            headers.push(header(&self.task_hub_header, hub)?);
        }
        headers.push(header("x-user-agent", &self.user_agent)?);
        if let Some(id) = worker_id {
            headers.push(header("workerid", id)?);
        }
        for (name, value) in &self.extra_headers {
            headers.push(header(name, value)?);
        }
        Ok(Connection {
            channel,
            max_message_bytes: self.max_message_bytes,
            task_hub_header: header_name(&self.task_hub_header)?,
            headers: Arc::new(headers),
            tokens: self
                .credential
                .clone()
                .map(|c| Arc::new(TokenCache::new(c, self.scope.clone()))),
        })
    }
}

fn header_name(name: &str) -> Result<AsciiMetadataKey> {
    AsciiMetadataKey::from_bytes(name.as_bytes())
        .map_err(|_| Error::Transport(format!("invalid header name {name:?}")))
}

fn header(name: &str, value: &str) -> Result<(AsciiMetadataKey, AsciiMetadataValue)> {
    let not_printable = || {
        Error::Transport(format!(
            "header {name:?} has a value that is not printable ASCII"
        ))
    };
    // gRPC ASCII metadata is printable ASCII; the HTTP layer alone would let other bytes through.
    if !value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(not_printable());
    }
    let value = AsciiMetadataValue::try_from(value).map_err(|_| not_printable())?;
    Ok((header_name(name)?, value))
}

/// A channel plus what every call must carry.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    pub(crate) channel: Channel,
    max_message_bytes: usize,
    task_hub_header: AsciiMetadataKey,
    headers: Arc<Vec<(AsciiMetadataKey, AsciiMetadataValue)>>,
    tokens: Option<Arc<TokenCache>>,
}

impl Connection {
    /// The same channel and token cache, addressing another task hub.
    pub(crate) fn with_task_hub(&self, task_hub: &str) -> Result<Connection> {
        let (key, value) = header(self.task_hub_header.as_str(), task_hub)?;
        let mut headers: Vec<_> = self
            .headers
            .iter()
            .filter(|(k, _)| *k != key)
            .cloned()
            .collect();
        headers.insert(0, (key, value));
        Ok(Connection {
            channel: self.channel.clone(),
            max_message_bytes: self.max_message_bytes,
            task_hub_header: self.task_hub_header.clone(),
            headers: Arc::new(headers),
            tokens: self.tokens.clone(),
        })
    }

    /// The generated stub on this channel, with the message size limit in both directions.
    pub(crate) fn stub(&self) -> TaskHubSidecarServiceClient<Channel> {
        TaskHubSidecarServiceClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
    }

    /// Wraps a message with the headers (and a current token). A message over the size limit is refused here,
    /// with its size, rather than half sent (tonic then reports only a broken HTTP/2 stream).
    pub(crate) async fn request<T: durable_proto::prost::Message>(
        &self,
        message: T,
    ) -> Result<tonic::Request<T>> {
        let bytes = message.encoded_len();
        if bytes > self.max_message_bytes {
            return Err(Error::MessageTooLarge {
                bytes,
                limit: self.max_message_bytes,
            });
        }
        self.wrap(message).await
    }

    /// Wraps any message with the headers (and a current token), without the size check.
    pub(crate) async fn wrap<T>(&self, message: T) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        for (key, value) in self.headers.iter() {
            metadata.insert(key.clone(), value.clone());
        }
        if let Some(tokens) = &self.tokens {
            let bearer = tokens.bearer().await?;
            let mut value = AsciiMetadataValue::try_from(bearer)
                .map_err(|_| Error::Credential("the token is not printable ASCII".into()))?;
            value.set_sensitive(true);
            metadata.insert("authorization", value);
        }
        Ok(request)
    }

    pub(crate) async fn request_with_timeout<T: durable_proto::prost::Message>(
        &self,
        message: T,
        timeout: Option<Duration>,
    ) -> Result<tonic::Request<T>> {
        let mut request = self.request(message).await?;
        if let Some(timeout) = timeout {
            // Longer than the wire format can say means "no practical limit".
            request.set_timeout(timeout.min(MAX_TIMEOUT));
        }
        Ok(request)
    }
}
