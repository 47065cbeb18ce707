//! ASP.NET-style route templates as `function.json` writes them: `orders/{id:int}/{kind?}`, `files/{*path}`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Constraint {
    None,
    Int,
    Alpha,
    Bool,
    Guid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param {
        name: String,
        optional: bool,
        constraint: Constraint,
    },
    CatchAll(String),
}

/// A parsed route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteTemplate {
    segments: Vec<Segment>,
}

impl RouteTemplate {
    pub(crate) fn parse(template: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let parts: Vec<&str> = template
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        for (i, part) in parts.iter().enumerate() {
            let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
                if part.contains('{') || part.contains('}') {
                    return Err(format!(
                        "route segment {part:?}: a parameter must be a whole segment"
                    ));
                }
                segments.push(Segment::Literal((*part).to_owned()));
                continue;
            };
            if let Some(name) = inner.strip_prefix('*').or_else(|| inner.strip_prefix("**")) {
                if i + 1 != parts.len() {
                    return Err(format!("catch-all {{{inner}}} must be the last segment"));
                }
                segments.push(Segment::CatchAll(name.trim_start_matches('*').to_owned()));
                continue;
            }
            let (inner, optional) = match inner.strip_suffix('?') {
                Some(rest) => (rest, true),
                None => (inner, false),
            };
            let (name, constraint) = match inner.split_once(':') {
                None => (inner, Constraint::None),
                Some((name, c)) => (
                    name,
                    match c.to_ascii_lowercase().as_str() {
                        "int" | "long" => Constraint::Int,
                        "alpha" => Constraint::Alpha,
                        "bool" => Constraint::Bool,
                        "guid" => Constraint::Guid,
                        other => return Err(format!("unsupported route constraint {other:?}")),
                    },
                ),
            };
            if name.is_empty() {
                return Err(format!("route segment {part:?} has no parameter name"));
            }
            segments.push(Segment::Param {
                name: name.to_owned(),
                optional,
                constraint,
            });
        }
        Ok(RouteTemplate { segments })
    }

    /// Matches a path (without the route prefix; percent-decoded segments) and returns the route parameters.
    pub(crate) fn matches(&self, path: &[String]) -> Option<BTreeMap<String, String>> {
        let mut params = BTreeMap::new();
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(lit) => {
                    if !path.get(i)?.eq_ignore_ascii_case(lit) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Param {
                    name,
                    optional,
                    constraint,
                } => match path.get(i) {
                    Some(value) => {
                        if !constraint.accepts(value) {
                            return None;
                        }
                        params.insert(name.clone(), value.clone());
                        i += 1;
                    }
                    None if *optional => {}
                    None => return None,
                },
                Segment::CatchAll(name) => {
                    params.insert(name.clone(), path[i.min(path.len())..].join("/"));
                    i = path.len();
                }
            }
        }
        (i == path.len()).then_some(params)
    }

    /// How specific the template is; more literal segments win when two templates match.
    pub(crate) fn specificity(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 4,
                Segment::Param {
                    constraint: Constraint::None,
                    ..
                } => 2,
                Segment::Param { .. } => 3,
                Segment::CatchAll(_) => 0,
            })
            .sum()
    }
}

impl Constraint {
    fn accepts(&self, value: &str) -> bool {
        match self {
            Constraint::None => true,
            Constraint::Int => value.parse::<i64>().is_ok(),
            Constraint::Alpha => {
                !value.is_empty() && value.chars().all(|c| c.is_ascii_alphabetic())
            }
            Constraint::Bool => {
                value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
            }
            Constraint::Guid => uuid::Uuid::parse_str(value).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn parameters_optionals_constraints_and_catch_all() {
        let t = RouteTemplate::parse("orchestrators/{functionName}/{instanceId?}").unwrap();
        let m = t.matches(&path("Orchestrators/HelloCities")).unwrap();
        assert_eq!(m["functionName"], "HelloCities");
        assert!(!m.contains_key("instanceId"));
        assert_eq!(
            t.matches(&path("orchestrators/A/b")).unwrap()["instanceId"],
            "b"
        );
        assert!(t.matches(&path("orchestrators/A/b/c")).is_none());
        assert!(t.matches(&path("orchestrators")).is_none());

        let t = RouteTemplate::parse("items/{id:int}").unwrap();
        assert_eq!(t.matches(&path("items/42")).unwrap()["id"], "42");
        assert!(t.matches(&path("items/abc")).is_none());

        let t = RouteTemplate::parse("files/{*rest}").unwrap();
        assert_eq!(t.matches(&path("files/a/b/c")).unwrap()["rest"], "a/b/c");

        assert!(RouteTemplate::parse("a{b}").is_err());
        assert!(RouteTemplate::parse("{x:weird}").is_err());
        assert!(
            RouteTemplate::parse("items/list").unwrap().specificity()
                > RouteTemplate::parse("items/{id}").unwrap().specificity()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_template_parses_or_is_refused_and_matches_any_path(
            template in "[a-zA-Z0-9{}/?*:=._-]{0,40}",
            path in proptest::collection::vec("[a-zA-Z0-9%._-]{0,8}", 0..6),
        ) {
            if let Ok(t) = RouteTemplate::parse(&template) {
                let _ = t.specificity();
                if let Some(params) = t.matches(&path) {
                    prop_assert!(params.len() <= path.len() + 1);
                }
            }
        }

        #[test]
        fn any_text_is_a_template_or_a_refusal(template in ".{0,60}", path in proptest::collection::vec(".{0,8}", 0..4)) {
            if let Ok(t) = RouteTemplate::parse(&template) {
                let _ = t.matches(&path);
            }
        }
    }
}
