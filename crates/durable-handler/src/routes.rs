//! Functions HTTP route templates, matched the way the host matches them (literal segments case-insensitively),
//! so a request the host forwarded with a differently-cased path still finds its function.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param { name: String, optional: bool },
    CatchAll(String),
}

/// A parsed route template such as `orders/{id:int}/items/{item?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteTemplate {
    segments: Vec<Segment>,
}

impl RouteTemplate {
    pub(crate) fn parse(template: &str) -> Result<Self, String> {
        let template = template.trim_matches('/');
        let raw: Vec<&str> = if template.is_empty() {
            Vec::new()
        } else {
            template.split('/').collect()
        };
        let mut segments = Vec::with_capacity(raw.len());
        for (i, segment) in raw.iter().enumerate() {
            if segment.is_empty() {
                return Err("empty path segment".into());
            }
            let Some(inner) = segment.strip_prefix('{') else {
                if segment.contains(['{', '}']) {
                    return Err(format!(
                        "segment '{segment}': a parameter must fill a whole segment"
                    ));
                }
                segments.push(Segment::Literal(segment.to_ascii_lowercase()));
                continue;
            };
            let inner = inner.strip_suffix('}').ok_or_else(|| {
                format!("segment '{segment}': a parameter must fill a whole segment")
            })?;
            let (catch_all, inner) = match inner.strip_prefix('*') {
                Some(rest) => (true, rest),
                None => (false, inner),
            };
            // Constraints (`{id:int}`) and defaults (`{id=1}`) are checked by the host before it forwards.
            let head = inner.split([':', '=']).next().unwrap_or_default();
            let (name, optional) = match head.strip_suffix('?') {
                Some(n) => (n, true),
                None => (head, inner.ends_with('?')),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("segment '{segment}': invalid parameter name"));
            }
            if (optional || catch_all) && i + 1 != raw.len() {
                return Err(format!(
                    "segment '{segment}': optional and catch-all parameters must come last"
                ));
            }
            segments.push(if catch_all {
                Segment::CatchAll(name.to_owned())
            } else {
                Segment::Param {
                    name: name.to_owned(),
                    optional,
                }
            });
        }
        Ok(Self { segments })
    }

    /// The template with parameter names erased, to find two functions claiming the same paths.
    pub(crate) fn shape(&self) -> String {
        let parts: Vec<&str> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(text) => text.as_str(),
                Segment::Param {
                    optional: false, ..
                } => "{}",
                Segment::Param { optional: true, .. } => "{?}",
                Segment::CatchAll(_) => "{*}",
            })
            .collect();
        parts.join("/")
    }

    /// The route parameters when `path` (already split, still percent-encoded) matches, plus how specific the
    /// match is (literal segments count most), so the most specific template can win.
    pub(crate) fn matches(&self, path: &[&str]) -> Option<(usize, BTreeMap<String, String>)> {
        let mut params = BTreeMap::new();
        let mut literals = 0;
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => {
                    if !path.get(i)?.eq_ignore_ascii_case(text) {
                        return None;
                    }
                    literals += 1;
                    i += 1;
                }
                Segment::Param { name, optional } => match path.get(i) {
                    Some(value) => {
                        params.insert(name.clone(), decode_segment(value));
                        i += 1;
                    }
                    None if *optional => {}
                    None => return None,
                },
                Segment::CatchAll(name) => {
                    let rest: Vec<String> = path[i.min(path.len())..]
                        .iter()
                        .map(|s| decode_segment(s))
                        .collect();
                    params.insert(name.clone(), rest.join("/"));
                    i = path.len();
                }
            }
        }
        (i == path.len()).then_some((literals, params))
    }
}

/// Splits a request path below the route prefix; `None` when the path is not under it.
pub(crate) fn split_below_prefix<'a>(path: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let mut segments = path.trim_matches('/').split('/').filter(|s| !s.is_empty());
    if !prefix.is_empty() {
        for expected in prefix.split('/').filter(|s| !s.is_empty()) {
            if !segments.next()?.eq_ignore_ascii_case(expected) {
                return None;
            }
        }
    }
    Some(segments.collect())
}

fn decode_segment(text: &str) -> String {
    percent_decode(text, false)
}

/// Percent-decoding that keeps malformed escapes as they are; `plus_is_space` for query strings.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                if let Some(b) = bytes.get(i + 1..i + 3).and_then(hex_pair) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let [high, low] = pair else {
        return None;
    };
    let digit = |c: u8| (c as char).to_digit(16);
    u8::try_from(digit(*high)? * 16 + digit(*low)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
        let segments = split_below_prefix(path, "api")?;
        RouteTemplate::parse(template)
            .unwrap()
            .matches(&segments)
            .map(|(_, p)| p)
    }

    #[test]
    fn parses_and_refuses() {
        assert!(RouteTemplate::parse("orders/{id:int}/").is_ok());
        assert!(RouteTemplate::parse("a/{x?}/b").is_err());
        assert!(RouteTemplate::parse("file.{ext}").is_err());
        assert!(RouteTemplate::parse("a//b").is_err());
        assert!(RouteTemplate::parse("{bad name}").is_err());
        assert!(RouteTemplate::parse("{*rest}/x").is_err());
    }

    #[test]
    fn matches_like_the_host() {
        assert_eq!(
            m("greet/{name}", "/api/Greet/T%C5%8Dky%C5%8D").unwrap()["name"],
            "Tōkyō"
        );
        assert_eq!(m("greet/{name}", "/API/greet/x/").unwrap()["name"], "x");
        assert!(m("greet/{name}", "/api/greet").is_none());
        assert!(m("greet/{name}", "/api/greet/a/b").is_none());
        assert!(m("greet/{name}", "/other/greet/a").is_none());
        assert_eq!(m("start/{name?}", "/api/start").unwrap().len(), 0);
        assert_eq!(
            m("files/{*path}", "/api/files/a/b%20c").unwrap()["path"],
            "a/b c"
        );
        assert_eq!(m("orders/{id:int}", "/api/orders/7").unwrap()["id"], "7");
        assert!(m("Hello", "/api/hello").is_some());
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(decode_segment("a%2"), "a%2");
        assert_eq!(decode_segment("%zz%41"), "%zzA");
        assert_eq!(decode_segment("%"), "%");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn any_template_parses_or_is_refused_and_matches_any_path(
            template in "[a-zA-Z0-9{}/?*:=._-]{0,40}",
            path in "[a-zA-Z0-9%{}/?*._-]{0,40}",
            prefix in "[a-z/]{0,8}",
        ) {
            if let Ok(t) = RouteTemplate::parse(&template) {
                let _ = t.shape();
                if let Some(segments) = split_below_prefix(&path, &prefix) {
                    let _ = t.matches(&segments);
                }
            }
        }

        #[test]
        fn any_text_is_a_template_or_a_refusal(template in ".{0,60}", path in ".{0,40}") {
            if let Ok(t) = RouteTemplate::parse(&template)
                && let Some(segments) = split_below_prefix(&path, "api")
            {
                let _ = t.matches(&segments);
            }
            let _ = percent_decode(&path, true);
            let _ = percent_decode(&template, false);
        }
    }
}
