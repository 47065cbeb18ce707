//! The client a starter function gets from its `durableClient` binding.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::client_binding::{ClientBinding, HttpManagementPayload};
use crate::http_types::HttpResponse;

/// The gRPC client type handed to starter functions.
pub type GrpcClient = durable_grpc::DurableClient;

/// A durable client bound to the task hub named by the `durableClient` binding: gRPC calls go to the extension's
/// local endpoint (`rpcBaseUrl`, with the `Durable-TaskHub` header), management URLs come from `httpBaseUrl`.
///
/// Derefs to [`GrpcClient`] for the client operations (start, raise event, terminate, query, ...).
#[derive(Clone, Debug)]
pub struct DurableFunctionsClient {
    binding: ClientBinding,
    client: GrpcClient,
}

impl DurableFunctionsClient {
    /// Connects (lazily) to the binding's gRPC endpoint.
    pub fn from_binding(binding: ClientBinding) -> Result<Self, durable_grpc::Error> {
        let client = connect(&binding)?;
        Ok(Self { binding, client })
    }

    /// The binding this client was made from.
    pub fn binding(&self) -> &ClientBinding {
        &self.binding
    }

    /// The gRPC client.
    pub fn grpc(&self) -> &GrpcClient {
        &self.client
    }

    /// The management URLs of an instance (see [`ClientBinding::management_payload`]).
    pub fn management_payload(&self, instance_id: &str) -> HttpManagementPayload {
        self.binding.management_payload(instance_id)
    }

    /// `202 Accepted` + `Location` + the management payload, as `CreateCheckStatusResponse` answers.
    pub fn create_check_status_response(&self, instance_id: &str) -> HttpResponse {
        self.binding.create_check_status_response(instance_id)
    }
}

impl std::ops::Deref for DurableFunctionsClient {
    type Target = GrpcClient;

    fn deref(&self) -> &GrpcClient {
        &self.client
    }
}

fn connect(binding: &ClientBinding) -> Result<GrpcClient, durable_grpc::Error> {
    let mut options = durable_grpc::ConnectionOptions::new(&binding.rpc_base_url)
        .with_task_hub_header(durable_grpc::FUNCTIONS_TASK_HUB_HEADER);
    // Without a hub name the header is left out, and the extension uses its configured hub.
    if !binding.task_hub_name.is_empty() {
        options = options.with_task_hub(binding.task_hub_name.clone());
    }
    GrpcClient::new(&options)
}

/// Channels are multiplexed and costly to set up, so one client per endpoint and hub is shared by invocations.
#[derive(Debug, Default)]
pub(crate) struct ClientCache {
    clients: Mutex<HashMap<(String, String), GrpcClient>>,
}

impl ClientCache {
    pub(crate) fn get(
        &self,
        binding: ClientBinding,
    ) -> Result<DurableFunctionsClient, durable_grpc::Error> {
        let key = (binding.rpc_base_url.clone(), binding.task_hub_name.clone());
        let mut clients = match self.clients.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(client) = clients.get(&key) {
            return Ok(DurableFunctionsClient {
                binding,
                client: client.clone(),
            });
        }
        let created = DurableFunctionsClient::from_binding(binding)?;
        clients.insert(key, created.client.clone());
        Ok(created)
    }
}
