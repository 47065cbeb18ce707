//! Just enough of the Azure Storage Queue REST API for a queue trigger: get, delete, release and put messages,
//! authenticated with Shared Key, against Azurite (`UseDevelopmentStorage=true`) or a storage account.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;

/// Azurite's documented development account.
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const API_VERSION: &str = "2021-12-02";

/// A queue service account: where it is and how to sign for it.
#[derive(Clone)]
pub(crate) struct Account {
    name: String,
    key: hmac::Key,
    /// Base URL of the queue service, without a trailing slash (for Azurite it ends with the account name).
    endpoint: String,
    /// Path-style URLs (the emulator) repeat the account name in the signed resource.
    path_style: bool,
    http: reqwest::Client,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) pop_receipt: String,
    pub(crate) dequeue_count: u32,
    pub(crate) insertion_time: String,
    pub(crate) expiration_time: String,
    pub(crate) next_visible_time: String,
    /// As stored (base64 when written by the Functions SDKs).
    pub(crate) text: String,
}

fn pairs(connection_string: &str) -> BTreeMap<String, String> {
    connection_string
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

impl Account {
    /// `UseDevelopmentStorage=true` (Azurite on its default port 10001) or
    /// `AccountName=...;AccountKey=...;QueueEndpoint=...` (or `DefaultEndpointsProtocol` + `EndpointSuffix`); an
    /// Azurite on another port is `AccountName=devstoreaccount1;AccountKey=<its key>;QueueEndpoint=http://127.0.0.1:<port>/devstoreaccount1`.
    pub(crate) fn from_connection_string(connection_string: &str) -> Result<Account, String> {
        let p = pairs(connection_string);
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let (name, key, endpoint, path_style) = if p
            .get("usedevelopmentstorage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            let endpoint = format!("http://127.0.0.1:10001/{DEV_ACCOUNT}");
            (DEV_ACCOUNT.to_owned(), DEV_KEY.to_owned(), endpoint, true)
        } else {
            let name = p.get("accountname").cloned().ok_or("no AccountName")?;
            let key = p.get("accountkey").cloned().ok_or("no AccountKey")?;
            let endpoint = match p.get("queueendpoint") {
                Some(e) => e.trim_end_matches('/').to_owned(),
                None => format!(
                    "{}://{name}.queue.{}",
                    p.get("defaultendpointsprotocol")
                        .map_or("https", String::as_str),
                    p.get("endpointsuffix")
                        .map_or("core.windows.net", String::as_str)
                ),
            };
            let path_style = endpoint.ends_with(&format!("/{name}"));
            (name, key, endpoint, path_style)
        };
        let key_bytes = BASE64
            .decode(key)
            .map_err(|_| "AccountKey is not base64".to_owned())?;
        Ok(Account {
            name,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
            endpoint,
            path_style,
            http,
        })
    }

    fn rfc1123_now() -> String {
        let now = time::OffsetDateTime::now_utc();
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        now.format(&format).unwrap_or_default()
    }

    /// Sends a signed request. `path` is below the endpoint (`/queue/messages`); `query` pairs are unencoded.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<(u16, String), String> {
        let date = Self::rfc1123_now();
        let length = body.as_ref().map_or(0, String::len);
        let content_type = if body.is_some() {
            "application/xml"
        } else {
            ""
        };
        let mut resource = format!("/{}", self.name);
        if self.path_style {
            resource.push('/');
            resource.push_str(&self.name);
        }
        resource.push_str(path);
        let mut sorted: Vec<(String, &str)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        sorted.sort();
        for (k, v) in &sorted {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let length_text = if length == 0 {
            String::new()
        } else {
            length.to_string()
        };
        let to_sign = format!(
            "{method}\n\n\n{length_text}\n\n{content_type}\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n{resource}"
        );
        let signature = BASE64.encode(hmac::sign(&self.key, to_sign.as_bytes()).as_ref());
        let url = format!("{}{}", self.endpoint, path);
        let mut request = self
            .http
            .request(method, url)
            .query(query)
            .header("x-ms-date", date)
            .header("x-ms-version", API_VERSION)
            .header(
                "Authorization",
                format!("SharedKey {}:{signature}", self.name),
            );
        if let Some(body) = body {
            request = request.header("Content-Type", content_type).body(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    fn check(what: &str, (status, body): (u16, String), ok: &[u16]) -> Result<String, String> {
        if ok.contains(&status) {
            Ok(body)
        } else {
            let code = tag(&body, "Code").unwrap_or_default();
            Err(format!("{what}: HTTP {status} {code}"))
        }
    }

    pub(crate) async fn create_queue(&self, queue: &str) -> Result<(), String> {
        let r = self
            .send(reqwest::Method::PUT, &format!("/{queue}"), &[], None)
            .await?;
        Self::check("create queue", r, &[201, 204, 409]).map(drop)
    }

    pub(crate) async fn get_messages(
        &self,
        queue: &str,
        count: u32,
        visibility_secs: u64,
    ) -> Result<Vec<Message>, String> {
        let count = count.to_string();
        let visibility = visibility_secs.to_string();
        let r = self
            .send(
                reqwest::Method::GET,
                &format!("/{queue}/messages"),
                &[
                    ("numofmessages", &count),
                    ("visibilitytimeout", &visibility),
                ],
                None,
            )
            .await?;
        let body = Self::check("get messages", r, &[200])?;
        Ok(parse_messages(&body))
    }

    pub(crate) async fn delete_message(
        &self,
        queue: &str,
        message: &Message,
    ) -> Result<(), String> {
        let r = self
            .send(
                reqwest::Method::DELETE,
                &format!("/{queue}/messages/{}", message.id),
                &[("popreceipt", &message.pop_receipt)],
                None,
            )
            .await?;
        Self::check("delete message", r, &[204, 404]).map(drop)
    }

    /// Makes a message visible again at once, for the next attempt.
    pub(crate) async fn release_message(
        &self,
        queue: &str,
        message: &Message,
    ) -> Result<(), String> {
        let r = self
            .send(
                reqwest::Method::PUT,
                &format!("/{queue}/messages/{}", message.id),
                &[
                    ("popreceipt", &message.pop_receipt),
                    ("visibilitytimeout", "0"),
                ],
                Some(message_body(&message.text)),
            )
            .await?;
        Self::check("release message", r, &[204, 404]).map(drop)
    }

    /// Adds a message; `text` is stored as given (encode it first when the reader expects base64).
    pub(crate) async fn put_message(&self, queue: &str, text: &str) -> Result<(), String> {
        let r = self
            .send(
                reqwest::Method::POST,
                &format!("/{queue}/messages"),
                &[],
                Some(message_body(text)),
            )
            .await?;
        Self::check("put message", r, &[201]).map(drop)
    }
}

fn message_body(text: &str) -> String {
    format!(
        "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
        escape(text)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(unescape(&xml[start..end]))
}

fn parse_messages(xml: &str) -> Vec<Message> {
    xml.split("<QueueMessage>")
        .skip(1)
        .filter_map(|chunk| {
            Some(Message {
                id: tag(chunk, "MessageId")?,
                pop_receipt: tag(chunk, "PopReceipt")?,
                dequeue_count: tag(chunk, "DequeueCount")?.parse().ok()?,
                insertion_time: iso_time(&tag(chunk, "InsertionTime").unwrap_or_default()),
                expiration_time: iso_time(&tag(chunk, "ExpirationTime").unwrap_or_default()),
                next_visible_time: iso_time(&tag(chunk, "TimeNextVisible").unwrap_or_default()),
                text: tag(chunk, "MessageText").unwrap_or_default(),
            })
        })
        .collect()
}

/// `Fri, 09 Oct 2009 21:04:30 GMT` to `2009-10-09T21:04:30+00:00`, as a `DateTimeOffset` prints.
fn iso_time(rfc1123: &str) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    match time::PrimitiveDateTime::parse(rfc1123, &format) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => rfc1123.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_message_list() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>m1</MessageId>\
            <InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime><ExpirationTime>Fri, 16 Oct 2009 21:04:30 GMT</ExpirationTime>\
            <PopReceipt>AgAA+/==</PopReceipt><TimeNextVisible>Fri, 09 Oct 2009 23:29:20 GMT</TimeNextVisible>\
            <DequeueCount>2</DequeueCount><MessageText>a&amp;b</MessageText></QueueMessage></QueueMessagesList>";
        let messages = parse_messages(xml);
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(
            (m.id.as_str(), m.pop_receipt.as_str(), m.dequeue_count),
            ("m1", "AgAA+/==", 2)
        );
        assert_eq!(m.insertion_time, "2009-10-09T21:04:30+00:00");
        assert_eq!(m.text, "a&b");
        assert!(parse_messages("<QueueMessagesList />").is_empty());
    }

    #[test]
    fn development_storage_is_the_emulator() {
        let a = Account::from_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:10001/devstoreaccount1");
        assert!(a.path_style);
        let a = Account::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(a.endpoint, "https://acct.queue.core.windows.net");
        assert!(!a.path_style);
        assert!(Account::from_connection_string("AccountName=x").is_err());
    }
}
