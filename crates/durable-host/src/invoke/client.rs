//! The HTTP/1 client that carries invocations to the handler: one address on loopback, keep-alive connections
//! kept in a small pool, and nothing else. A general client (redirects, proxies, URL parsing, its own header map
//! per request) costs more per invocation than the exchange itself on this path, and none of it applies here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

type Sender = http1::SendRequest<Full<Bytes>>;

/// How long a connection may sit unused before it is closed instead of reused (as the host's HTTP client pool
/// did before this client: 30 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection that is not in use, and since when.
struct Idle {
    sender: Sender,
    since: Instant,
}

/// Keep-alive HTTP/1 connections to the handler's address.
pub(crate) struct HandlerClient {
    addr: SocketAddr,
    /// `Host: 127.0.0.1:<port>`, built once.
    host: HeaderValue,
    /// Most recently used last: the connection taken next is the one most likely still warm.
    idle: Mutex<Vec<Idle>>,
    /// [`IDLE_TIMEOUT`] but in tests.
    idle_timeout: Duration,
}

impl std::fmt::Debug for HandlerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What came back: the status, whether the content type is one the host reads as JSON, and the whole body (both
/// only for a success: the host does not read the answer to a failure).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) json_content: bool,
    pub(crate) body: Bytes,
}

/// Why no answer came: the request could not be sent (or its answer was cut off), with the text reqwest gave
/// these cases before, which the host's error messages carry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("error sending request for url ({url})")]
    Send { url: String },
    #[error("error decoding response body")]
    Body,
}

impl HandlerClient {
    /// A client for the handler on `port`. Inside a runtime it also starts the task that closes connections left
    /// idle past the limit; it ends with the client.
    pub(crate) fn new(port: u16) -> Arc<Self> {
        Self::with_idle_timeout(port, IDLE_TIMEOUT)
    }

    fn with_idle_timeout(port: u16, idle_timeout: Duration) -> Arc<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let client = Arc::new(HandlerClient {
            addr,
            host: HeaderValue::try_from(addr.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1")),
            idle: Mutex::new(Vec::new()),
            idle_timeout,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(close_idle(Arc::downgrade(&client), idle_timeout / 2));
        }
        client
    }

    /// `http://127.0.0.1:<port><path>`, for messages.
    fn url(&self, path: &Uri) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `POST <path>` with `headers` (the host header is added here) and `body`, and reads the answer.
    pub(crate) async fn post(
        &self,
        path: Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, SendError> {
        headers.insert(HOST, self.host.clone());
        let failed = || SendError::Send {
            url: self.url(&path),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = path.clone();
        *request.headers_mut() = headers;
        // A pooled connection may have been closed by the handler (a restart) without this side having noticed
        // yet; a request that was never written to it is sent again on another connection, as any HTTP/1 client
        // does. A fresh connection that fails is the answer.
        let (response, sender) = loop {
            let (mut sender, reused) = match self.checkout().await {
                Some(sender) => (sender, true),
                None => (self.connect().await.map_err(|()| failed())?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => break (response, sender),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(failed()),
                },
            }
        };
        let (parts, incoming) = response.into_parts();
        if !parts.status.is_success() {
            // The body stays unread, so the connection cannot carry another request; dropping it closes it.
            return Ok(Answer {
                status: parts.status,
                json_content: false,
                body: Bytes::new(),
            });
        }
        let body = incoming
            .collect()
            .await
            .map_err(|_| SendError::Body)?
            .to_bytes();
        self.checkin(sender);
        Ok(Answer {
            status: parts.status,
            json_content: is_json_content(&parts.headers),
            body,
        })
    }

    /// The most recently used connection that is still open and ready for a request.
    async fn checkout(&self) -> Option<Sender> {
        loop {
            let idle = self.idle.lock().ok()?.pop()?;
            if idle.sender.is_closed() || idle.since.elapsed() > self.idle_timeout {
                continue;
            }
            let mut sender = idle.sender;
            // The connection takes the next request once its task has seen the previous answer end, which is
            // at once in practice; a connection that closed meanwhile fails here.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn checkin(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let now = Instant::now();
            idle.retain(|i| now.duration_since(i.since) <= self.idle_timeout);
            idle.push(Idle { sender, since: now });
        }
    }

    /// Drops the connections that closed or sat unused past the limit; dropping a sender closes its connection.
    fn close_stale(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            let now = Instant::now();
            idle.retain(|i| {
                !i.sender.is_closed() && now.duration_since(i.since) <= self.idle_timeout
            });
        }
    }

    /// A new connection; why it failed is not part of the host's message, which names the URL only.
    async fn connect(&self) -> Result<Sender, ()> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(drop)?;
        // A request is one write; it must not wait for the acknowledgement of the previous segment.
        stream.set_nodelay(true).map_err(drop)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(drop)?;
        tokio::spawn(async move {
            // Its end (the handler closed it, or went away) is seen by the sender; nothing to report here.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// Closes idle connections even when no invocation comes to notice them: after a burst, the connections (and
/// the handler's tasks serving them) would otherwise stay open until the next request.
async fn close_idle(client: Weak<HandlerClient>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(client) = client.upgrade() else {
            return;
        };
        client.close_stale();
    }
}

/// Whether a content type is one Web API's `JsonMediaTypeFormatter` reads (`application/json`, `text/json`); the
/// host reads the reply with `ReadAsAsync`, which refuses other types.
pub(crate) fn is_json_content(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|t| {
            t.eq_ignore_ascii_case("application/json") || t.eq_ignore_ascii_case("text/json")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one request (head and `Content-Length` body) from `stream`; `None` when the peer closed it first.
    async fn read_request(
        stream: &mut TcpStream,
        pending: &mut Vec<u8>,
    ) -> Option<(String, Vec<u8>)> {
        loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(pending[..end].to_vec()).ok()?;
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                while pending.len() < end + 4 + length {
                    let mut buf = [0u8; 4096];
                    let n = stream.read(&mut buf).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    pending.extend_from_slice(&buf[..n]);
                }
                let body = pending[end + 4..end + 4 + length].to_vec();
                pending.drain(..end + 4 + length);
                return Some((head, body));
            }
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            pending.extend_from_slice(&buf[..n]);
        }
    }

    /// A server that answers each request on a connection with `reply`, then closes the connection after
    /// `per_connection` requests; it sends back what it saw: (connection number, head, body). Connection number
    /// `silent` (counted from 1) reads its first request and never answers, as a handler stuck in a function.
    async fn server(
        reply: &'static str,
        per_connection: usize,
        silent: Option<usize>,
    ) -> (
        u16,
        tokio::sync::mpsc::UnboundedReceiver<(usize, String, Vec<u8>)>,
    ) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                connection += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    for _ in 0..per_connection {
                        let Some((head, body)) = read_request(&mut stream, &mut pending).await
                        else {
                            return;
                        };
                        let _ = tx.send((connection, head, body));
                        if silent == Some(connection) {
                            std::future::pending::<()>().await;
                        }
                        if stream.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, rx)
    }

    const OK: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-azure-functions-invocationid",
            HeaderValue::from_static("abc"),
        );
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers
    }

    #[tokio::test]
    async fn requests_share_a_connection_and_carry_what_was_given() {
        let (port, mut seen) = server(OK, usize::MAX, None).await;
        let client = HandlerClient::new(port);
        for body in ["{\"a\":1}", "{\"b\":2}"] {
            let answer = client
                .post(Uri::from_static("/Fn"), headers(), Bytes::from(body))
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            assert!(answer.json_content);
            assert_eq!(&answer.body[..], b"{}");
            let (connection, head, received) = seen.recv().await.unwrap();
            assert_eq!(connection, 1, "a second connection was opened");
            assert!(head.starts_with("POST /Fn HTTP/1.1\r\n"), "{head}");
            assert!(
                head.contains(&format!("host: 127.0.0.1:{port}\r\n")),
                "{head}"
            );
            assert!(
                head.contains("x-azure-functions-invocationid: abc"),
                "{head}"
            );
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{head}"
            );
            assert_eq!(received, body.as_bytes());
        }
    }

    #[tokio::test]
    async fn a_connection_the_handler_closed_is_replaced() {
        // Each connection answers one request and is then closed by the server.
        let (port, mut seen) = server(OK, 1, None).await;
        let client = HandlerClient::new(port);
        for expected in 1..=3 {
            let answer = client
                .post(
                    Uri::from_static("/Fn"),
                    headers(),
                    Bytes::from_static(b"{}"),
                )
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(seen.recv().await.unwrap().0, expected);
        }
    }

    #[tokio::test]
    async fn a_failure_status_is_returned_without_its_body_and_no_answer_is_an_error() {
        let (port, _seen) = server(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\noops",
            usize::MAX,
            None,
        )
        .await;
        let client = HandlerClient::new(port);
        let answer = client
            .post(Uri::from_static("/Fn"), headers(), Bytes::new())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(answer.body.is_empty());
        // Nothing listens on a port that was just freed.
        let closed = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let error = HandlerClient::new(port)
            .post(Uri::from_static("/Fn"), headers(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("error sending request for url (http://127.0.0.1:{port}/Fn)")
        );
    }

    #[tokio::test]
    async fn idle_connections_are_closed_without_another_request() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut pending = Vec::new();
            read_request(&mut stream, &mut pending).await.unwrap();
            stream.write_all(OK.as_bytes()).await.unwrap();
            // Ends when the client closes the connection.
            read_request(&mut stream, &mut pending).await.is_none()
        });
        let limit = Duration::from_millis(200);
        let client = HandlerClient::with_idle_timeout(port, limit);
        let sent = Instant::now();
        client
            .post(Uri::from_static("/Fn"), headers(), Bytes::new())
            .await
            .unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(30), served)
            .await
            .expect("the idle connection stayed open")
            .unwrap();
        assert!(closed);
        assert!(sent.elapsed() > limit, "closed before the limit");
    }

    #[tokio::test]
    async fn a_request_given_up_does_not_leave_its_connection_for_the_next() {
        let (port, mut seen) = server(OK, usize::MAX, Some(1)).await;
        let client = HandlerClient::new(port);
        let given_up = tokio::time::timeout(
            Duration::from_millis(200),
            client.post(Uri::from_static("/Fn"), headers(), Bytes::from("first")),
        )
        .await;
        assert!(given_up.is_err());
        let (connection, _, body) = seen.recv().await.unwrap();
        assert_eq!((connection, body), (1, b"first".to_vec()));
        let answer = client
            .post(Uri::from_static("/Fn"), headers(), Bytes::from("second"))
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        let (connection, _, body) = seen.recv().await.unwrap();
        assert_eq!((connection, body), (2, b"second".to_vec()));
    }

    #[test]
    fn json_content_types_are_recognized() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            is_json_content(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("text/json"));
        assert!(!with("text/plain"));
        assert!(!is_json_content(&HeaderMap::new()));
    }
}
