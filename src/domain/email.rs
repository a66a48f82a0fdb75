//! An email address as we store it: trimmed, lower-cased, syntactically valid.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Enter an email address like name@example.com.")]
pub struct EmailError;

impl Email {
    /// The longest address SMTP carries (RFC 5321's path limit, less `<>`).
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let candidate = input.trim().to_lowercase();
        let valid = candidate.len() <= Email::MAX_LEN
            && email_address::EmailAddress::is_valid(&candidate)
            // Deliverable addresses have a dotted domain; `a@localhost` is a typo here.
            && candidate.rsplit_once('@').is_some_and(|(_, domain)| domain.contains('.'));
        if valid {
            Ok(Email(candidate))
        } else {
            Err(EmailError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn rejects_what_cannot_be_an_address() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "a b@example.com",
            "ada@@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
