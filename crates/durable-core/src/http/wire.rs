//! The JSON forms the .NET worker gives headers and timeouts.

pub(super) mod headers_map {
    use serde::de::Deserializer;
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};

    use super::super::HttpHeaders;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Values {
        One(String),
        Many(Vec<String>),
    }

    pub(in crate::http) fn serialize<S: Serializer>(
        headers: &HttpHeaders,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(headers.len()))?;
        for (name, values) in headers {
            match values.as_slice() {
                [one] => map.serialize_entry(name, one)?,
                many => map.serialize_entry(name, many)?,
            }
        }
        map.end()
    }

    pub(in crate::http) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HttpHeaders, D::Error> {
        let raw: Option<std::collections::BTreeMap<String, Option<Values>>> =
            Option::deserialize(d)?;
        Ok(raw
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let values = match v {
                    Some(Values::One(s)) => vec![s],
                    Some(Values::Many(v)) => v,
                    None => Vec::new(),
                };
                (k, values)
            })
            .collect())
    }
}

pub(super) mod headers_option {
    use serde::{Deserializer, Serializer};

    use super::super::HttpHeaders;
    use super::headers_map;

    pub(in crate::http) fn serialize<S: Serializer>(
        headers: &Option<HttpHeaders>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match headers {
            Some(h) => headers_map::serialize(h, s),
            None => s.serialize_none(),
        }
    }

    pub(in crate::http) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<HttpHeaders>, D::Error> {
        let headers = headers_map::deserialize(d)?;
        Ok((!headers.is_empty()).then_some(headers))
    }
}

/// `Option<Duration>` as a .NET `TimeSpan` string (`[-][d.]hh:mm:ss[.fffffff]`), `null` when absent.
pub(super) mod timespan {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(in crate::http) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let Some(d) = value else {
            return s.serialize_none();
        };
        let total = d.as_secs();
        let (days, hours, minutes, seconds) = (
            total / 86_400,
            total / 3_600 % 24,
            total / 60 % 60,
            total % 60,
        );
        let ticks = d.subsec_nanos() / 100;
        let mut text = String::new();
        if days > 0 {
            text.push_str(&format!("{days}."));
        }
        text.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
        if ticks > 0 {
            text.push_str(&format!(".{ticks:07}"));
        }
        s.serialize_str(&text)
    }

    pub(in crate::http) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a TimeSpan: '{text}'")))
    }

    pub(in crate::http) fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let (days, clock) = match text.split_once(':') {
            Some((head, _)) if head.contains('.') => {
                let (days, hours) = head.split_once('.')?;
                (
                    days.parse::<u64>().ok()?,
                    format!("{hours}{}", &text[head.len()..]),
                )
            }
            _ => (0, text.to_owned()),
        };
        let mut parts = clock.split(':');
        let hours: u64 = parts.next()?.parse().ok()?;
        let minutes: u64 = parts.next()?.parse().ok()?;
        let seconds_text = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let (whole, fraction) = seconds_text.split_once('.').unwrap_or((seconds_text, ""));
        let seconds: u64 = whole.parse().ok()?;
        if hours > 23 || minutes > 59 || seconds > 59 || fraction.len() > 7 {
            return None;
        }
        let ticks: u32 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<7}").parse().ok()?
        };
        let secs = days * 86_400 + hours * 3_600 + minutes * 60 + seconds;
        Some(Duration::new(secs, ticks * 100))
    }
}
