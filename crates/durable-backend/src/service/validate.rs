//! Input limits, checked before anything is stored so a bad request never damages an instance.

use durable_proto::TaskFailureDetails;
use prost::Message;
use tonic::Status;

/// The longest accepted instance ID, like the scheduler.
pub(crate) const MAX_INSTANCE_ID: usize = 100;
/// The longest accepted entity key.
pub(crate) const MAX_ENTITY_KEY: usize = 100;
/// The longest accepted entity name.
pub(crate) const MAX_ENTITY_NAME: usize = 100;

fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// An orchestration instance ID: 1 to 100 printable ASCII characters, not starting with '@' (entity IDs do).
pub(crate) fn instance_id(id: &str) -> Result<(), Status> {
    instance_id_of("instance ID", id)
}

/// [`instance_id`] for an ID with a role (`what`, e.g. "sub-orchestration instance ID"), named in the message.
pub(crate) fn instance_id_of(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument(format!("the {what} is empty")));
    }
    if id.len() > MAX_INSTANCE_ID {
        return Err(Status::invalid_argument(format!(
            "the {what} is {} characters long; the limit is {MAX_INSTANCE_ID}",
            id.len()
        )));
    }
    if !printable_ascii(id) {
        return Err(Status::invalid_argument(format!(
            "the {what} may only contain printable ASCII characters"
        )));
    }
    if id.starts_with('@') {
        return Err(Status::invalid_argument(format!(
            "the {what} may not start with '@' (reserved for entity IDs)"
        )));
    }
    Ok(())
}

/// An entity ID `@name@key` within the name and key limits.
pub(crate) fn entity_id(id: &str) -> Result<(), Status> {
    let parts = id.strip_prefix('@').and_then(|rest| rest.split_once('@'));
    let Some((name, key)) = parts.filter(|(name, _)| !name.is_empty()) else {
        let shown: String = id.chars().take(MAX_INSTANCE_ID).collect();
        return Err(Status::invalid_argument(format!(
            "{shown:?} is not an entity ID of the form @name@key"
        )));
    };
    if name.len() > MAX_ENTITY_NAME {
        return Err(Status::invalid_argument(format!(
            "the entity name is {} characters long; the limit is {MAX_ENTITY_NAME}",
            name.len()
        )));
    }
    if key.len() > MAX_ENTITY_KEY {
        return Err(Status::invalid_argument(format!(
            "the entity key is {} characters long; the limit is {MAX_ENTITY_KEY}",
            key.len()
        )));
    }
    if !printable_ascii(id) {
        return Err(Status::invalid_argument(
            "entity IDs may only contain printable ASCII characters",
        ));
    }
    Ok(())
}

/// A payload (input, output, event data, state) within the configured size.
pub(crate) fn payload(what: &str, value: Option<&String>, limit: usize) -> Result<(), Status> {
    match value {
        Some(v) if v.len() > limit => Err(Status::invalid_argument(format!(
            "the {what} is {} bytes; the payload limit is {limit} bytes",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// Failure details (message, stack trace, inner failures) within the configured size, measured as stored.
pub(crate) fn failure_details(
    what: &str,
    value: Option<&TaskFailureDetails>,
    limit: usize,
) -> Result<(), Status> {
    match value.map(Message::encoded_len) {
        Some(size) if size > limit => Err(Status::invalid_argument(format!(
            "the {what} is {size} bytes; the payload limit is {limit} bytes"
        ))),
        _ => Ok(()),
    }
}

/// The hub name from the `taskhub` header.
pub(crate) fn hub_name(name: &str) -> Result<(), Status> {
    if name.len() > 256 || !printable_ascii(name) {
        return Err(Status::invalid_argument(
            "the taskhub header must be at most 256 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_follow_the_scheduler_rules() {
        assert!(instance_id("order-1").is_ok());
        assert!(instance_id(&"x".repeat(100)).is_ok());
        assert!(instance_id(&"x".repeat(101)).is_err());
        assert!(instance_id("").is_err());
        assert!(instance_id("@counter@a").is_err());
        assert!(instance_id("caf\u{e9}").is_err());
        assert!(instance_id("tab\there").is_err());
    }

    #[test]
    fn entity_ids_need_a_name_and_a_bounded_key() {
        assert!(entity_id("@counter@k").is_ok());
        assert!(entity_id("@counter@").is_ok());
        assert!(entity_id("counter@k").is_err());
        assert!(entity_id("@@k").is_err());
        assert!(entity_id(&format!("@c@{}", "k".repeat(101))).is_err());
    }

    #[test]
    fn payloads_over_the_limit_are_refused() {
        assert!(payload("input", Some(&"a".repeat(10)), 10).is_ok());
        let error = payload("input", Some(&"a".repeat(11)), 10).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.message().contains("11 bytes"));
        assert!(payload("input", None, 10).is_ok());
    }
}
