//! HTTP functions: an orchestration starter, the counter's HTTP face and one ordinary (non-durable) function.

use azure_durable_functions::serde_json::{self, Value, json};
use azure_durable_functions::{
    AuthLevel, DurableFunctionsClient, EntityId, FunctionApp, FunctionError, HttpRequest,
    HttpResponse, HttpTrigger, InvocationContext, StartOptions, StatusCode, tracing,
};

use super::entities::COUNTER;

pub(super) fn register(app: FunctionApp) -> FunctionApp {
    app.http_starter(
        "HttpStart",
        HttpTrigger::new()
            .route("orchestrators/{functionName}")
            .methods(["post"])
            .auth_level(AuthLevel::Anonymous),
        http_start,
    )
    .http_starter(
        "CounterGet",
        HttpTrigger::new()
            .route("counter/{key}")
            .methods(["get"])
            .auth_level(AuthLevel::Anonymous),
        counter_get,
    )
    .http_starter(
        "CounterSignal",
        HttpTrigger::new()
            .route("counter/{key}/{operation}")
            .methods(["post"])
            .auth_level(AuthLevel::Anonymous),
        counter_signal,
    )
    .http(
        "Hello",
        HttpTrigger::new()
            .route("hello")
            .methods(["get"])
            .auth_level(AuthLevel::Anonymous),
        hello,
    )
}

/// `POST /api/orchestrators/{functionName}` with an optional JSON body as input: starts the orchestration and
/// answers 202 with the management URLs, as `CreateCheckStatusResponse` does.
async fn http_start(
    req: HttpRequest,
    client: DurableFunctionsClient,
    ctx: InvocationContext,
) -> Result<HttpResponse, FunctionError> {
    let name = req.param("functionName").unwrap_or_default().to_owned();
    let input: Value = if req.body.trim().is_empty() {
        Value::Null
    } else {
        match req.json() {
            Ok(input) => input,
            Err(error) => {
                return Ok(HttpResponse::text(format!("the body is not JSON: {error}"))
                    .status(StatusCode::BAD_REQUEST));
            }
        }
    };
    let mut options = StartOptions::new();
    if let Some(id) = req.query_param("instanceId") {
        options = options.with_instance_id(id);
    }
    let instance_id = client
        .schedule_new_orchestration(&name, &input, options)
        .await?;
    tracing::info!(function = ctx.function_name(), %name, %instance_id, "started orchestration");
    Ok(client.create_check_status_response(&instance_id))
}

/// `GET /api/counter/{key}`: the counter's value (404 when it has never been touched).
async fn counter_get(
    req: HttpRequest,
    client: DurableFunctionsClient,
    _ctx: InvocationContext,
) -> Result<HttpResponse, FunctionError> {
    let id = EntityId::new(COUNTER, req.param("key").unwrap_or_default());
    match client.get_entity(&id, true).await? {
        Some(entity) => {
            let value: Value = match entity.serialized_state.as_deref() {
                Some(state) => serde_json::from_str(state)?,
                None => Value::Null,
            };
            Ok(HttpResponse::json(
                &json!({ "id": id.to_string(), "value": value }),
            )?)
        }
        None => {
            Ok(HttpResponse::text(format!("{id} does not exist")).status(StatusCode::NOT_FOUND))
        }
    }
}

/// `POST /api/counter/{key}/{operation}` (`add` with a number body, `reset`, `delete`): signals the counter.
async fn counter_signal(
    req: HttpRequest,
    client: DurableFunctionsClient,
    _ctx: InvocationContext,
) -> Result<HttpResponse, FunctionError> {
    let id = EntityId::new(COUNTER, req.param("key").unwrap_or_default());
    let operation = req
        .param("operation")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let input: Value = match operation.as_str() {
        "add" => match req.json::<i64>() {
            Ok(amount) => json!(amount),
            Err(_) => {
                return Ok(HttpResponse::text("add needs a whole number as the body")
                    .status(StatusCode::BAD_REQUEST));
            }
        },
        "reset" | "delete" => Value::Null,
        other => {
            return Ok(
                HttpResponse::text(format!("unknown counter operation '{other}'"))
                    .status(StatusCode::BAD_REQUEST),
            );
        }
    };
    client.signal_entity(&id, &operation, &input, None).await?;
    Ok(
        HttpResponse::json(&json!({ "id": id.to_string(), "signaled": operation }))?
            .status(StatusCode::ACCEPTED),
    )
}

/// `GET /api/hello?name=...`: an ordinary HTTP function, no durable machinery involved.
async fn hello(req: HttpRequest, _ctx: InvocationContext) -> Result<HttpResponse, FunctionError> {
    let name = req.query_param("name").unwrap_or("world");
    Ok(HttpResponse::text(format!("Hello, {name}!")))
}
