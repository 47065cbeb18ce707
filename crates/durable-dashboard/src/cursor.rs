//! The list's page tokens. The backend's continuation tokens are opaque and only ever point at the start of one of
//! its pages, but a name-filtered page of the dashboard can end in the middle of one; so a dashboard token is the
//! backend's token for that page, how many of its items were already shown, and the backend page size it was read
//! with (the same token must be read with the same size to mean the same page).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Where a list continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The backend's continuation token for the page to read; `None` for the first page.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub(crate) backend_token: Option<String>,
    /// How many items at the start of that page were already shown.
    #[serde(rename = "s", default)]
    pub(crate) skip: u32,
    /// The backend page size the page is read with.
    #[serde(rename = "p")]
    pub(crate) page_size: u32,
}

/// A token is a few hundred bytes at most; anything far longer did not come from here.
const MAX_TOKEN_CHARS: usize = 4096;

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(token: &str) -> Result<Cursor, ApiError> {
        let refused =
            || ApiError::BadRequest("the page token is not one this dashboard gave out".into());
        if token.len() > MAX_TOKEN_CHARS {
            return Err(refused());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| refused())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| refused())?;
        if cursor.page_size == 0 {
            return Err(refused());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for cursor in [
            Cursor {
                backend_token: None,
                skip: 0,
                page_size: 50,
            },
            Cursor {
                backend_token: Some("order-42/\"x\"".into()),
                skip: 17,
                page_size: 500,
            },
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        }
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for token in ["", "not base64!", "e30", &"A".repeat(5000), "eyJwIjowfQ"] {
            let error = Cursor::decode(token).unwrap_err();
            assert!(matches!(error, ApiError::BadRequest(_)), "{token}");
        }
    }
}
