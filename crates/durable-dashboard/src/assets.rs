//! The pages and their assets, compiled into the library. Every page is the same shell; the script reads the path
//! and draws the page. Data never goes into HTML on the server: the script puts it into the page as text.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{OriginalUri, Path};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

const SHELL: &str = include_str!("../assets/index.html");

/// The files under `assets/`: name, content type, body. The scripts are ES modules that import each other.
const ASSETS: [(&str, &str, &str); 7] = [
    ("app.js", JS, include_str!("../assets/app.js")),
    ("core.js", JS, include_str!("../assets/core.js")),
    ("instances.js", JS, include_str!("../assets/instances.js")),
    ("instance.js", JS, include_str!("../assets/instance.js")),
    ("entities.js", JS, include_str!("../assets/entities.js")),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";

/// Scripts and styles come from here only, the page may not be framed, and it only talks to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

/// The paths the pages live at.
const PAGES: [&str; 4] = ["/", "/instance", "/entities", "/entity"];

pub(crate) fn routes() -> Router {
    let mut router = Router::new().route("/assets/{name}", get(asset));
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router.fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
}

/// Headers every answer of the dashboard carries.
fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Keys may travel in the page's query; no other site learns them from a Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Where the dashboard is mounted, from the URI the client asked for and the part of it this router saw:
/// `/dashboard/instance` seen as `/instance` is mounted at `/dashboard/`.
pub(crate) fn base_path(original: &str, seen: &str) -> String {
    let prefix = original
        .strip_suffix(seen)
        .or_else(|| (seen == "/").then_some(original))
        .unwrap_or("");
    format!("{}/", prefix.trim_end_matches('/'))
}

fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `OriginalUri` is what the client asked for (the request's own URI when nothing nested this router).
async fn shell(OriginalUri(original): OriginalUri, seen: Uri) -> Response {
    let base = base_path(original.path(), seen.path());
    let html = SHELL.replace("{{BASE}}", &escape_attribute(&base));
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    harden(headers);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// A strong validator per asset: FNV-1a of the content, so a browser revalidates cheaply and never keeps a stale
/// copy.
fn etags() -> &'static [String; ASSETS.len()] {
    static TAGS: OnceLock<[String; ASSETS.len()]> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS.map(|(_, _, body)| {
            let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("\"{hash:016x}\"")
        })
    })
}

async fn asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let (_, content_type, body) = ASSETS[index];
    let etag = &etags()[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    harden(headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_where_the_router_is_mounted() {
        assert_eq!(base_path("/dashboard/instance", "/instance"), "/dashboard/");
        assert_eq!(base_path("/dashboard/", "/"), "/dashboard/");
        assert_eq!(base_path("/dashboard", "/"), "/dashboard/");
        assert_eq!(base_path("/", "/"), "/");
        assert_eq!(base_path("/entities", "/entities"), "/");
        assert_eq!(base_path("/a/b/entity", "/entity"), "/a/b/");
    }

    #[test]
    fn the_base_cannot_break_out_of_its_attribute() {
        assert_eq!(
            escape_attribute("/x\"><script>'&"),
            "/x&quot;&gt;&lt;script&gt;&#39;&amp;"
        );
    }

    #[test]
    fn the_shell_has_one_place_for_the_base_and_no_inline_code() {
        assert_eq!(SHELL.matches("{{BASE}}").count(), 1);
        assert!(
            !SHELL.contains("<script>"),
            "inline scripts would need 'unsafe-inline'"
        );
        assert!(
            !SHELL.contains("style="),
            "inline styles would need 'unsafe-inline'"
        );
        for (name, content_type, body) in ASSETS {
            if content_type == JS {
                // Data goes into the page as text only, and no code is made from strings.
                for forbidden in [
                    "innerHTML",
                    "outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                    "new Function",
                ] {
                    assert!(!body.contains(forbidden), "{name} uses {forbidden}");
                }
            }
        }
    }

    #[test]
    fn every_module_a_script_imports_is_served() {
        for (name, _, body) in ASSETS {
            for import in body.split("from './").skip(1) {
                let file = import.split('\'').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == file),
                    "{name} imports {file}"
                );
            }
        }
        assert!(SHELL.contains("src=\"assets/app.js\""));
    }
}
