//! The strength rule for new passwords.

/// A password someone is choosing. Never logged, never serialized.
pub struct NewPassword(String);

pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 128;

/// The most common passwords of at least ten characters: long is not enough
/// when everyone else picked it too.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "qwertyuiop",
    "1q2w3e4r5t",
    "password12",
    "password123",
    "password1234",
    "iloveyou12",
    "qwerty1234",
    "abcdefghij",
    "0123456789",
    "1111111111",
    "aaaaaaaaaa",
    "letmein123",
    "welcome123",
    "passw0rd12",
    "qwertyuiop1",
];

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Use at least {MIN_PASSWORD_CHARS} characters. A few unrelated words work well.")]
    TooShort,
    #[error("Use at most {MAX_PASSWORD_CHARS} characters.")]
    TooLong,
    #[error("That password is too easy to guess. Try a few unrelated words.")]
    TooCommon,
    #[error("Don't use your email address in your password.")]
    ContainsEmail,
}

impl NewPassword {
    /// `email` is the address of the account it is for.
    pub fn parse(input: &str, email: &str) -> Result<NewPassword, PasswordError> {
        let chars = input.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        let lower = input.to_lowercase();
        let distinct = {
            let mut seen: Vec<char> = lower.chars().collect();
            seen.sort_unstable();
            seen.dedup();
            seen.len()
        };
        if distinct < 4 || COMMON.contains(&lower.as_str()) {
            return Err(PasswordError::TooCommon);
        }
        let local = email.split('@').next().unwrap_or_default().to_lowercase();
        if local.len() >= 4 && lower.contains(&local) {
            return Err(PasswordError::ContainsEmail);
        }
        Ok(NewPassword(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        let check = |p: &str| NewPassword::parse(p, "ada.lovelace@example.com").err();
        assert_eq!(check("short"), Some(PasswordError::TooShort));
        assert_eq!(check(&"x".repeat(129)), Some(PasswordError::TooLong));
        assert_eq!(check("Password123"), Some(PasswordError::TooCommon));
        assert_eq!(check("abababababab"), Some(PasswordError::TooCommon));
        assert_eq!(
            check("my ada.lovelace secret"),
            Some(PasswordError::ContainsEmail)
        );
        assert_eq!(check("correct horse battery"), None);
        assert_eq!(check("ünïcødé-wörds-ok"), None);
    }
}
