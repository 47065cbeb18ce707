//! The app definition: the durable registry plus ordinary functions, validated into a [`Handler`].

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use durable_core::Registry;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{ClientCache, DurableFunctionsClient};
use crate::context::InvocationContext;
use crate::envelope::decode_layered;
use crate::error::{BuildError, FunctionError, InvocationError};
use crate::http_types::{HttpRequest, HttpResponse};
use crate::options::HandlerOptions;
use crate::routes::RouteTemplate;
use crate::triggers::{HttpTrigger, OutputBinding, QueueTrigger, TimerInfo, TimerTrigger};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type HttpFn = Arc<
    dyn Fn(HttpRequest, InvocationContext) -> BoxFuture<Result<HttpResponse, FunctionError>>
        + Send
        + Sync,
>;
type StarterFn = Arc<
    dyn Fn(
            HttpRequest,
            DurableFunctionsClient,
            InvocationContext,
        ) -> BoxFuture<Result<HttpResponse, FunctionError>>
        + Send
        + Sync,
>;
/// Decoding the trigger value is part of the erased call, so the typed input never leaves the closure.
type ValueFn = Arc<
    dyn Fn(
            &str,
            &Value,
            InvocationContext,
        ) -> Result<BoxFuture<Result<(), FunctionError>>, InvocationError>
        + Send
        + Sync,
>;

/// Binding names used by the generated `function.json` files (and so expected in `Data`).
pub(crate) mod names {
    pub(crate) const DURABLE_CONTEXT: &str = "context";
    pub(crate) const ACTIVITY_INPUT: &str = "input";
    pub(crate) const HTTP_REQUEST: &str = "req";
    pub(crate) const HTTP_RESPONSE: &str = "res";
    pub(crate) const DURABLE_CLIENT: &str = "starter";
    pub(crate) const QUEUE_MESSAGE: &str = "message";
    pub(crate) const TIMER: &str = "timer";
}

#[derive(Clone)]
pub(crate) enum FunctionKind {
    Orchestrator,
    Activity,
    Entity,
    Http {
        trigger: HttpTrigger,
        handler: HttpFn,
    },
    Starter {
        trigger: HttpTrigger,
        handler: StarterFn,
    },
    Queue {
        trigger: QueueTrigger,
        handler: ValueFn,
    },
    Timer {
        trigger: TimerTrigger,
        handler: ValueFn,
    },
}

impl FunctionKind {
    pub(crate) fn outputs(&self) -> &[OutputBinding] {
        match self {
            Self::Http { trigger, .. } | Self::Starter { trigger, .. } => &trigger.outputs,
            Self::Queue { trigger, .. } => &trigger.outputs,
            Self::Timer { trigger, .. } => &trigger.outputs,
            Self::Orchestrator | Self::Activity | Self::Entity => &[],
        }
    }
}

#[derive(Clone)]
pub(crate) struct FunctionDef {
    pub(crate) name: String,
    pub(crate) kind: FunctionKind,
}

/// An app to serve to the Functions host: durable functions from a [`Registry`] plus ordinary functions.
///
/// Every orchestrator, activity and entity in the registry becomes a function of the same name.
pub struct FunctionApp {
    registry: Registry,
    functions: Vec<FunctionDef>,
    routes: Option<Router>,
    options: HandlerOptions,
}

impl std::fmt::Debug for FunctionApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionApp")
            .field(
                "functions",
                &self.functions.iter().map(|d| &d.name).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FunctionApp {
    /// An app serving the registry's orchestrators, activities and entities.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            functions: Vec::new(),
            routes: None,
            options: HandlerOptions::default(),
        }
    }

    /// Replaces the handler options.
    pub fn options(mut self, options: HandlerOptions) -> Self {
        self.options = options;
        self
    }

    /// An HTTP-triggered function. It answers both the wrapped form (`Data.req`) and, with
    /// `enableForwardingHttpRequest`, the forwarded request on `/<routePrefix>/<route>`.
    pub fn http<F, Fut>(mut self, name: impl Into<String>, trigger: HttpTrigger, f: F) -> Self
    where
        F: Fn(HttpRequest, InvocationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HttpResponse, FunctionError>> + Send + 'static,
    {
        let handler: HttpFn = Arc::new(move |req, ctx| Box::pin(f(req, ctx)));
        self.functions.push(FunctionDef {
            name: name.into(),
            kind: FunctionKind::Http { trigger, handler },
        });
        self
    }

    /// An HTTP-triggered function with a `durableClient` input: it gets a client for the app's task hub, typically
    /// to start an orchestration and answer [`DurableFunctionsClient::create_check_status_response`].
    pub fn http_starter<F, Fut>(
        mut self,
        name: impl Into<String>,
        trigger: HttpTrigger,
        f: F,
    ) -> Self
    where
        F: Fn(HttpRequest, DurableFunctionsClient, InvocationContext) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = Result<HttpResponse, FunctionError>> + Send + 'static,
    {
        let handler: StarterFn = Arc::new(move |req, client, ctx| Box::pin(f(req, client, ctx)));
        self.functions.push(FunctionDef {
            name: name.into(),
            kind: FunctionKind::Starter { trigger, handler },
        });
        self
    }

    /// A queue-triggered function; the message is deserialised into `T` (JSON messages as their JSON, others as
    /// text).
    pub fn queue<T, F, Fut>(mut self, name: impl Into<String>, trigger: QueueTrigger, f: F) -> Self
    where
        T: DeserializeOwned + 'static,
        F: Fn(T, InvocationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), FunctionError>> + Send + 'static,
    {
        let handler: ValueFn = Arc::new(move |binding, value, ctx| {
            let message: T = decode_layered(binding, value)?;
            Ok(Box::pin(f(message, ctx)))
        });
        self.functions.push(FunctionDef {
            name: name.into(),
            kind: FunctionKind::Queue { trigger, handler },
        });
        self
    }

    /// A timer-triggered function.
    pub fn timer<F, Fut>(mut self, name: impl Into<String>, trigger: TimerTrigger, f: F) -> Self
    where
        F: Fn(TimerInfo, InvocationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), FunctionError>> + Send + 'static,
    {
        let handler: ValueFn = Arc::new(move |binding, value, ctx| {
            let info: TimerInfo = decode_layered(binding, value)?;
            Ok(Box::pin(f(info, ctx)))
        });
        self.functions.push(FunctionDef {
            name: name.into(),
            kind: FunctionKind::Timer { trigger, handler },
        });
        self
    }

    /// The app's own axum routes, served next to the handler's (they must not overlap with `/` or
    /// `/{FunctionName}`).
    pub fn routes(mut self, router: Router) -> Self {
        self.routes = Some(match self.routes.take() {
            Some(existing) => existing.merge(router),
            None => router,
        });
        self
    }

    /// Validates the app: function names, duplicates, binding names and routes.
    pub fn build(self) -> Result<Handler, BuildError> {
        let mut all = Vec::new();
        for name in self.registry.orchestrator_names() {
            all.push(FunctionDef {
                name,
                kind: FunctionKind::Orchestrator,
            });
        }
        for name in self.registry.activity_names() {
            all.push(FunctionDef {
                name,
                kind: FunctionKind::Activity,
            });
        }
        for name in self.registry.entity_names() {
            all.push(FunctionDef {
                name,
                kind: FunctionKind::Entity,
            });
        }
        all.extend(self.functions);

        let mut by_name = BTreeMap::new();
        for (index, def) in all.iter().enumerate() {
            validate_function_name(&def.name)?;
            validate_bindings(def)?;
            if by_name
                .insert(def.name.to_ascii_lowercase(), index)
                .is_some()
            {
                return Err(BuildError::DuplicateFunction(def.name.clone()));
            }
        }
        let http_routes: Vec<(usize, RouteTemplate)> = all
            .iter()
            .enumerate()
            .filter_map(|(index, def)| match &def.kind {
                FunctionKind::Http { trigger, .. } => {
                    let route = trigger.route.as_deref().unwrap_or(&def.name);
                    RouteTemplate::parse(route)
                        .ok()
                        .map(|template| (index, template))
                }
                _ => None,
            })
            .collect();
        check_route_overlap(&all, &http_routes)?;
        let handler = Handler {
            inner: Arc::new(HandlerInner {
                registry: self.registry,
                functions: all,
                by_name,
                http_routes,
                routes: self.routes,
                options: self.options,
                clients: ClientCache::default(),
            }),
        };
        crate::server::check_routes(&handler)?;
        Ok(handler)
    }
}

/// A validated app, ready to serve ([`crate::app`], [`crate::serve`]) or to write out as Functions app files
/// ([`Handler::write_function_files`]). Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    pub(crate) inner: Arc<HandlerInner>,
}

pub(crate) struct HandlerInner {
    pub(crate) registry: Registry,
    pub(crate) functions: Vec<FunctionDef>,
    pub(crate) by_name: BTreeMap<String, usize>,
    /// HTTP functions reachable by forwarded requests: (index into `functions`, route).
    pub(crate) http_routes: Vec<(usize, RouteTemplate)>,
    pub(crate) routes: Option<Router>,
    pub(crate) options: HandlerOptions,
    pub(crate) clients: ClientCache,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("functions", &self.function_names())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Handler {
    /// The orchestrators, activities and entities, to run them elsewhere too (a gRPC worker, for one).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Every function the app serves, in registration order (durable functions first).
    pub fn function_names(&self) -> Vec<String> {
        self.inner
            .functions
            .iter()
            .map(|d| d.name.clone())
            .collect()
    }

    pub(crate) fn find(&self, name: &str) -> Option<&FunctionDef> {
        let index = *self.inner.by_name.get(&name.to_ascii_lowercase())?;
        self.inner.functions.get(index)
    }
}

/// Function names are folder names to the host: `^[a-zA-Z][a-zA-Z0-9_-]{0,127}$`.
fn validate_function_name(name: &str) -> Result<(), BuildError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 128;
    if valid {
        Ok(())
    } else {
        Err(BuildError::InvalidFunctionName(name.to_owned()))
    }
}

fn validate_bindings(def: &FunctionDef) -> Result<(), BuildError> {
    let mut seen: HashSet<String> = match &def.kind {
        FunctionKind::Http { .. } => [names::HTTP_REQUEST, names::HTTP_RESPONSE].into(),
        FunctionKind::Starter { .. } => [
            names::HTTP_REQUEST,
            names::HTTP_RESPONSE,
            names::DURABLE_CLIENT,
        ]
        .into(),
        FunctionKind::Queue { .. } => [names::QUEUE_MESSAGE].into(),
        FunctionKind::Timer { .. } => [names::TIMER].into(),
        FunctionKind::Orchestrator | FunctionKind::Activity | FunctionKind::Entity => {
            HashSet::new()
        }
    }
    .into_iter()
    .map(str::to_owned)
    .collect();
    for output in def.kind.outputs() {
        let valid = !output.name.is_empty()
            && output
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if !valid || !seen.insert(output.name.to_ascii_lowercase()) {
            return Err(BuildError::DuplicateBinding {
                function: def.name.clone(),
                binding: output.name.clone(),
            });
        }
    }
    if let FunctionKind::Http { trigger, .. } | FunctionKind::Starter { trigger, .. } = &def.kind
        && let Some(route) = &trigger.route
    {
        RouteTemplate::parse(route).map_err(|reason| BuildError::InvalidRoute {
            function: def.name.clone(),
            route: route.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Two HTTP functions with the same route shape and a common method would make forwarding ambiguous.
fn check_route_overlap(
    functions: &[FunctionDef],
    routes: &[(usize, RouteTemplate)],
) -> Result<(), BuildError> {
    let methods = |index: usize| match &functions[index].kind {
        FunctionKind::Http { trigger, .. } => trigger.methods.clone(),
        _ => Vec::new(),
    };
    for (i, (a, ta)) in routes.iter().enumerate() {
        for (b, tb) in &routes[i + 1..] {
            if ta.shape() != tb.shape() {
                continue;
            }
            let (ma, mb) = (methods(*a), methods(*b));
            if ma.is_empty() || mb.is_empty() || ma.iter().any(|m| mb.contains(m)) {
                return Err(BuildError::RouteConflict(format!(
                    "functions '{}' and '{}' serve the same route '{}'",
                    functions[*a].name,
                    functions[*b].name,
                    ta.shape()
                )));
            }
        }
    }
    Ok(())
}
