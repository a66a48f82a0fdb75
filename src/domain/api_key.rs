//! API keys as the settings page and the service see them. The secret
//! itself is never a domain value: it exists once, in [`CreatedApiKey`].

use serde::{Deserialize, Serialize};
use std::fmt;

use super::{ApiKeyId, OrgRole};

/// The recognisable start of every secret, so secret scanners (and people)
/// can tell a leaked tldw key at a glance.
pub const API_KEY_PREFIX: &str = "tldw_";

/// A key's label, e.g. "Slack bot": 1 to 60 characters, whitespace runs
/// folded into one space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyName(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Give the key a name of 1 to 60 characters, such as \"Slack bot\".")]
pub struct ApiKeyNameError;

impl ApiKeyName {
    pub const MAX_CHARS: usize = 60;

    pub fn parse(input: &str) -> Result<ApiKeyName, ApiKeyNameError> {
        let name = input.split_whitespace().collect::<Vec<_>>().join(" ");
        let length = name.chars().count();
        if (1..=Self::MAX_CHARS).contains(&length) && !name.chars().any(char::is_control) {
            Ok(ApiKeyName(name))
        } else {
            Err(ApiKeyNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiKeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One live key in the org's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    /// The secret's first 12 characters (`tldw_` + 7), to tell keys apart.
    pub prefix: String,
    pub role: OrgRole,
    /// The creator's email (or "Clerk user" when the account has none).
    pub created_by: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; `None` until the key is first used.
    pub last_used_at: Option<String>,
}

/// A key just made, with its secret: the only time the secret exists
/// outside the caller's hands (we keep its SHA-256 only).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    pub secret: String,
}

/// The secret stays out of logs even when the value is debug-printed.
impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("key", &self.key)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folded_and_bounded() {
        assert_eq!(
            ApiKeyName::parse("  Slack \t bot\n").unwrap().as_str(),
            "Slack bot"
        );
        assert!(ApiKeyName::parse("").is_err());
        assert!(ApiKeyName::parse(" \n ").is_err());
        assert!(ApiKeyName::parse(&"é".repeat(60)).is_ok());
        assert!(ApiKeyName::parse(&"é".repeat(61)).is_err());
        assert!(ApiKeyName::parse("bell\u{7}").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let created = CreatedApiKey {
            key: ApiKeyView {
                id: ApiKeyId::from_uuid(uuid::Uuid::nil()),
                name: "ci".into(),
                prefix: "tldw_abcdefg".into(),
                role: OrgRole::Member,
                created_by: "a@example.com".into(),
                created_at: "2026-12-07T12:00:00Z".into(),
                last_used_at: None,
            },
            secret: "tldw_supersecret".into(),
        };
        let printed = format!("{created:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
        assert!(printed.contains("tldw_abcdefg"));
    }
}
