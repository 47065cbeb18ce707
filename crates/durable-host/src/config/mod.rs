//! The app as the Functions host sees it: `host.json`, the app settings and the function folders.

mod command_line;
mod functions;
mod host_json;
mod settings;

pub(crate) use functions::{AuthLevel, FunctionKind, FunctionMeta, HttpTrigger, read_functions};
pub(crate) use host_json::{
    DurableClientSettings, OverridableStates, parse_timespan, read_host_json, substitute,
};
pub(crate) use settings::{DEFAULT_PORT, read_local_http_port, read_settings};
