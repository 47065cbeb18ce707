//! Entity identities: `@name@key`, with the name lower-cased.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The identity of an entity: its (lower-cased) name and its key. Written `@name@key`.
///
/// Ordering is the ordering of the `@name@key` strings, the order in which locks are acquired by every SDK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityId {
    /// The entity name, lower-cased.
    pub name: String,
    /// The entity key (case preserved).
    pub key: String,
}

/// Why a string is not an entity id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an entity id (expected '@name@key')")]
pub struct EntityIdParseError(pub String);

impl EntityId {
    /// An entity id; the name is lower-cased.
    pub fn new(name: impl AsRef<str>, key: impl Into<String>) -> Self {
        Self {
            name: name.as_ref().to_lowercase(),
            key: key.into(),
        }
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        std::iter::once(b'@')
            .chain(self.name.bytes())
            .chain(std::iter::once(b'@'))
            .chain(self.key.bytes())
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}@{}", self.name, self.key)
    }
}

impl FromStr for EntityId {
    type Err = EntityIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix('@')
            .ok_or_else(|| EntityIdParseError(s.to_string()))?;
        let (name, key) = rest
            .split_once('@')
            .ok_or_else(|| EntityIdParseError(s.to_string()))?;
        if name.is_empty() {
            return Err(EntityIdParseError(s.to_string()));
        }
        Ok(EntityId::new(name, key))
    }
}

impl Ord for EntityId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl PartialOrd for EntityId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        let id = EntityId::new("Counter", "Key@1");
        assert_eq!(id.to_string(), "@counter@Key@1");
        assert_eq!("@counter@Key@1".parse::<EntityId>().unwrap(), id);
        assert!("counter@k".parse::<EntityId>().is_err());
        assert!("@counter".parse::<EntityId>().is_err());
        assert!("@@k".parse::<EntityId>().is_err());
    }

    #[test]
    fn orders_like_the_string_form() {
        let a = EntityId::new("a", "x");
        let b = EntityId::new("a-", "x");
        assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
        assert!(b < a);
    }
}
