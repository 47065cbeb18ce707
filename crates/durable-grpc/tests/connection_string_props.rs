//! Property tests of the connection-string parser: it never panics, whatever the text, and whatever it accepts
//! comes back unchanged from its own `Display` form. A fixed number of cases, so it runs in seconds under
//! `cargo test`.

use durable_grpc::{ConnectionString, Error};
use proptest::prelude::*;

const KEYS: [&str; 10] = [
    "Endpoint",
    "endpoint",
    "TaskHub",
    "Authentication",
    "ClientID",
    "TenantId",
    "TokenFilePath",
    "AdditionallyAllowedTenants",
    "ResourceId",
    "AuthorityHost",
];

const AUTHENTICATIONS: [&str; 8] = [
    "None",
    "managedidentity",
    " DefaultAzure ",
    "WorkloadIdentity",
    "AzureCLI",
    "Environment",
    "VisualStudio",
    "Certificate",
];

/// Text with the characters the syntax cares about over-represented.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("[ a-zA-Z0-9:/._;=,'\"\\t-]{0,24}").unwrap(),
        Just("http://127.0.0.1:8080".to_owned()),
        Just("https://x.westus2.durabletask.io".to_owned()),
        any::<String>(),
    ]
}

fn quoted(v: String, quote: char) -> String {
    let doubled = format!("{quote}{quote}");
    format!("{quote}{}{quote}", v.replace(quote, &doubled))
}

/// `key=value` pairs as people (and mistakes) write them: known and unknown keys, bare, quoted and broken values.
fn pair() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        proptest::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
        proptest::string::string_regex("[a-zA-Z= ]{0,8}").unwrap(),
    ];
    let value = prop_oneof![
        value(),
        proptest::sample::select(AUTHENTICATIONS.to_vec()).prop_map(str::to_owned),
        value().prop_map(|v| quoted(v, '"')),
        value().prop_map(|v| quoted(v, '\'')),
    ];
    (key, value, proptest::bool::ANY).prop_map(|(k, v, spaced)| {
        if spaced {
            format!(" {k} = {v} ")
        } else {
            format!("{k}={v}")
        }
    })
}

/// A value written bare, in double quotes or in single quotes.
fn written(value: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (value, 0..3u8).prop_map(|(v, how)| match how {
        0 => v.replace(';', ""),
        1 => quoted(v, '"'),
        _ => quoted(v, '\''),
    })
}

/// Mostly acceptable strings: an endpoint, usually a task hub, a known authentication and some of the other keys,
/// in any order, so that the round trip is exercised on rich values.
fn plausible() -> impl Strategy<Value = String> {
    let known = |key: &'static str| written(value()).prop_map(move |v| format!("{key}={v}"));
    let authentication = proptest::sample::select(AUTHENTICATIONS[..7].to_vec())
        .prop_map(|a| format!("Authentication={a}"));
    (
        known("Endpoint"),
        proptest::option::weighted(0.9, known("TaskHub")),
        proptest::option::of(authentication),
        proptest::collection::vec(
            prop_oneof![
                known("ClientID"),
                known("TenantId"),
                known("TokenFilePath"),
                known("ResourceId"),
                known("AdditionallyAllowedTenants"),
            ],
            0..4,
        ),
    )
        .prop_map(|(endpoint, hub, authentication, rest)| {
            let mut pairs = vec![endpoint];
            pairs.extend(hub);
            pairs.extend(authentication);
            pairs.extend(rest);
            pairs
        })
        .prop_shuffle()
        .prop_map(|pairs| pairs.join(";"))
}

fn connection_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        value(),
        plausible(),
        plausible(),
        proptest::collection::vec(pair(), 0..7).prop_map(|pairs| pairs.join(";")),
        proptest::collection::vec(pair(), 0..7).prop_map(|pairs| format!(";{};", pairs.join(";;"))),
    ]
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match ConnectionString::parse(text) {
        Ok(parsed) => {
            let written = parsed.to_string();
            let again = ConnectionString::parse(&written);
            prop_assert!(
                again.is_ok(),
                "{written:?} from {text:?} does not parse: {again:?}"
            );
            prop_assert_eq!(again.unwrap(), parsed, "{:?} -> {:?}", text, written);
        }
        Err(Error::ConnectionString { key, message }) => {
            prop_assert!(!message.is_empty(), "no message for {key:?}");
        }
        Err(other) => prop_assert!(false, "{text:?} failed with a non-syntax error: {other}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_round_trips_what_it_accepts(text in connection_string()) {
        check(&text)?;
    }
}

#[test]
fn accepted_examples_round_trip() {
    for text in [
        "http://127.0.0.1:4001",
        "Endpoint=https://x.durabletask.io;TaskHub=it''s;Authentication=ManagedIdentity;ClientID=abc",
        r#"Endpoint="http://h:1";TaskHub='a;b';Authentication=WorkloadIdentity;TokenFilePath="/a ""b""";AdditionallyAllowedTenants=t1, t2,"#,
        "Endpoint=http://a=b;TaskHub= h ;ResourceId='https://r/'",
        "weird;endpoint",
    ] {
        check(text).unwrap();
        assert!(ConnectionString::parse(text).is_ok(), "{text}");
    }
}
