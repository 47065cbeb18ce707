//! What the dashboard tests run against: the embedded backend in memory, this workspace's worker with a few
//! orchestrations, activities and an entity, and the dashboard on a free port.
#![allow(dead_code, unreachable_pub)]

pub mod cdp;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, EntityId, FailureDetails,
    OrchestrationContext, OrchestrationError, Registry,
};
use durable_dashboard::{DashboardOptions, DashboardServer};
use durable_grpc::{
    ConnectionOptions, DurableClient, OrchestrationMetadata, StartOptions, Worker, WorkerHandle,
    WorkerOptions,
};
use serde_json::{Value, json};

/// How long anything may take before a test gives up.
pub const LIMIT: Duration = Duration::from_secs(60);

async fn process_order(
    ctx: OrchestrationContext,
    order: Value,
) -> Result<Value, OrchestrationError> {
    let items = order["items"].as_u64().unwrap_or(1);
    ctx.set_custom_status(&json!({ "stage": "validating" }))?;
    let valid: bool = ctx.call_activity("Validate", order.clone()).await?;
    ctx.create_timer_after(Duration::from_millis(150)).await?;
    let label: String = ctx
        .call_sub_orchestrator("ShipOrder", order["id"].clone(), None)
        .await?;
    let counter = EntityId::new("Counter", "orders");
    ctx.signal_entity(&counter, "add", items)?;
    let total: i64 = ctx.call_entity(&counter, "get", ()).await?;
    ctx.set_custom_status(&json!({ "stage": "shipped" }))?;
    Ok(json!({ "valid": valid, "label": label, "ordersSoFar": total, "shipped": true }))
}

async fn ship_order(ctx: OrchestrationContext, id: Value) -> Result<String, OrchestrationError> {
    let parcel: String = ctx.call_activity("Pack", id.clone()).await?;
    let label: String = ctx.call_activity("Label", parcel).await?;
    Ok(label)
}

async fn await_approval(ctx: OrchestrationContext, _: Value) -> Result<bool, OrchestrationError> {
    ctx.set_custom_status("waiting for approval")?;
    let approved: bool = ctx.wait_for_external_event("Approval").await?;
    Ok(approved)
}

async fn charge_card(ctx: OrchestrationContext, amount: u32) -> Result<String, OrchestrationError> {
    let receipt: String = ctx.call_activity("Charge", amount).await?;
    Ok(receipt)
}

/// Moves money between two accounts inside a critical section, and holds both locks while it waits for a
/// confirmation.
async fn transfer(ctx: OrchestrationContext, amount: i64) -> Result<String, OrchestrationError> {
    let from = EntityId::new("Account", "alice");
    let to = EntityId::new("Account", "bob");
    let lock = ctx.lock_entities(&[from.clone(), to.clone()]).await?;
    let _: i64 = ctx.call_entity(&from, "add", -amount).await?;
    let confirmed: bool = ctx.wait_for_external_event("Confirm").await?;
    if confirmed {
        let _: i64 = ctx.call_entity(&to, "add", amount).await?;
    }
    lock.release();
    Ok(format!("moved {amount}"))
}

async fn noop(_ctx: OrchestrationContext, input: Value) -> Result<Value, OrchestrationError> {
    Ok(input)
}

async fn validate(_ctx: ActivityContext, _order: Value) -> Result<bool, ActivityError> {
    tokio::time::sleep(Duration::from_millis(40)).await;
    Ok(true)
}

async fn pack(_ctx: ActivityContext, id: Value) -> Result<String, ActivityError> {
    tokio::time::sleep(Duration::from_millis(120)).await;
    Ok(format!("parcel-{}", id.as_str().unwrap_or("?")))
}

async fn label(_ctx: ActivityContext, parcel: String) -> Result<String, ActivityError> {
    tokio::time::sleep(Duration::from_millis(60)).await;
    Ok(format!("{parcel}/LBL-7"))
}

fn registry(charges: Arc<AtomicU32>) -> Registry {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("ProcessOrder", process_order)
        .add_orchestrator("ShipOrder", ship_order)
        .add_orchestrator("AwaitApproval", await_approval)
        .add_orchestrator("ChargeCard", charge_card)
        .add_orchestrator("Noop", noop)
        .add_orchestrator("Transfer", transfer)
        .add_activity("Validate", validate)
        .add_activity("Pack", pack)
        .add_activity("Label", label)
        // Declined the first time (with the card network's reason inside), accepted after a rewind.
        .add_activity("Charge", move |_ctx: ActivityContext, amount: u32| {
            let charges = Arc::clone(&charges);
            async move {
                if charges.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(ActivityError::new(
                        "CardDeclined",
                        format!("the card was declined for {amount} EUR"),
                    )
                    .with_inner(FailureDetails::new(
                        "GatewayError",
                        "HTTP 402 from the payment gateway",
                    )));
                }
                Ok::<_, ActivityError>(format!("receipt-{amount}"))
            }
        })
        .add_entity(
            "Counter",
            Entity::<i64>::new()
                .operation("add", |value: &mut i64, _ctx, n: i64| {
                    *value += n;
                    Ok::<_, EntityError>(*value)
                })
                .operation("get", |value: &mut i64, _ctx, _: ()| {
                    Ok::<_, EntityError>(*value)
                }),
        )
        .add_entity(
            "Account",
            Entity::<i64>::new().operation("add", |value: &mut i64, _ctx, n: i64| {
                *value += n;
                Ok::<_, EntityError>(*value)
            }),
        );
    registry
}

/// A backend, a worker and a client; the dashboard is started per test with the options it needs.
pub struct Stack {
    pub backend: durable_backend::Handle,
    pub worker: WorkerHandle,
    pub client: DurableClient,
    pub connection: ConnectionOptions,
}

impl Stack {
    pub async fn start() -> Result<Stack> {
        let backend = durable_backend::start(
            durable_backend::Options::new()
                .in_memory()
                .with_bind("127.0.0.1:0".parse()?),
        )
        .await?;
        let connection = ConnectionOptions::new(backend.endpoint()).with_task_hub("default");
        let worker = Worker::builder()
            .connection(connection.clone())
            .registry(registry(Arc::new(AtomicU32::new(0))))
            .options(WorkerOptions::new().with_shutdown_grace(Duration::from_secs(5)))
            .build()?
            .start();
        let client = DurableClient::new(&connection)?;
        Ok(Stack {
            backend,
            worker,
            client,
            connection,
        })
    }

    pub async fn dashboard(&self, options: DashboardOptions) -> Result<DashboardServer> {
        Ok(durable_dashboard::start("127.0.0.1:0".parse()?, self.client.clone(), options).await?)
    }

    pub async fn start_instance(&self, name: &str, id: &str, input: Value) -> Result<String> {
        Ok(self
            .client
            .schedule_new_orchestration(name, &input, StartOptions::new().with_instance_id(id))
            .await?)
    }

    pub async fn finished(&self, id: &str) -> Result<OrchestrationMetadata> {
        self.client
            .wait_for_completion(id, true, LIMIT)
            .await
            .with_context(|| format!("{id} did not finish"))
    }

    pub async fn started(&self, id: &str) -> Result<OrchestrationMetadata> {
        self.client
            .wait_for_start(id, true, LIMIT)
            .await
            .with_context(|| format!("{id} did not start"))
    }

    /// Waits until the instance's custom status is set (its first turn has run).
    pub async fn custom_status_set(&self, id: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let state = self.client.get_instance(id, true).await?;
            if state.is_some_and(|s| s.serialized_custom_status.is_some()) {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{id} never set its custom status"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) -> Result<()> {
        self.worker.shutdown().await?;
        self.backend.shutdown().await?;
        Ok(())
    }
}

/// GETs a JSON API call and returns its status and body.
pub async fn get(http: &reqwest::Client, url: &str) -> Result<(u16, Value)> {
    let reply = http.get(url).send().await?;
    let status = reply.status().as_u16();
    Ok((status, reply.json().await.unwrap_or(Value::Null)))
}

/// POSTs an action the way the pages do.
pub async fn act(
    http: &reqwest::Client,
    base: &str,
    action: &str,
    body: Value,
) -> Result<(u16, Value)> {
    let reply = http
        .post(format!("{base}api/instance/{action}"))
        .header("content-type", "application/json")
        .header("x-dashboard-request", "1")
        .body(body.to_string())
        .send()
        .await?;
    let status = reply.status().as_u16();
    Ok((status, reply.json().await.unwrap_or(Value::Null)))
}

/// The dashboard's root URL by IP address (`DashboardServer::url` says `localhost`, which may resolve to IPv6 first).
pub fn base(dashboard: &DashboardServer) -> String {
    format!("http://{}/", dashboard.local_addr())
}
