//! Clerk's Backend API, for the one thing session tokens do not carry: a
//! user's primary email (`GET /v1/users/{id}` with `CLERK_SECRET_KEY`).
//! Checkout and invitations need an address, so a Clerk user without one
//! could do neither.

use std::{fmt, time::Duration};

use anyhow::Context as _;
use rand::Rng as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::domain::Email;

/// A lookup happens while a user's first request waits for it.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A user object is a few kB; the cap keeps a misbehaving endpoint from
/// filling memory.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// One retry for what may pass (a 5xx, a 429, a dropped connection).
const ATTEMPTS: u32 = 2;

#[derive(Clone)]
pub struct ClerkBackend {
    http: reqwest::Client,
    base: url::Url,
    secret_key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum ClerkApiError {
    /// The key was refused: a configuration problem, not the user's.
    #[error("Clerk refused CLERK_SECRET_KEY ({0})")]
    Unauthorized(reqwest::StatusCode),
    #[error("Clerk answered {0}")]
    Status(reqwest::StatusCode),
    #[error("request to Clerk failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Clerk's answer is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("Clerk's answer is not a user object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Clerk user id")]
    BadUserId,
}

/// The part of Clerk's User object we read; everything else is ignored.
#[derive(Deserialize)]
struct User {
    primary_email_address_id: Option<String>,
    #[serde(default)]
    email_addresses: Vec<EmailAddress>,
}

#[derive(Deserialize)]
struct EmailAddress {
    id: String,
    email_address: String,
    verification: Option<Verification>,
}

#[derive(Deserialize)]
struct Verification {
    status: Option<String>,
}

impl ClerkBackend {
    pub fn new(base: url::Url, secret_key: SecretString) -> anyhow::Result<ClerkBackend> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tldw/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client for Clerk's Backend API")?;
        Ok(ClerkBackend {
            http,
            base,
            secret_key,
        })
    }

    /// The user's primary email, if Clerk has verified it. An unverified
    /// address proves nothing, and invitations are bound to addresses.
    /// `None` also for a user Clerk no longer knows.
    #[tracing::instrument(name = "clerk_user_email", skip(self))]
    pub async fn primary_email(&self, user_id: &str) -> Result<Option<Email>, ClerkApiError> {
        // The id comes from a verified token, but it still must not be able
        // to leave its path segment.
        if user_id.is_empty()
            || user_id.len() > 128
            || !user_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ClerkApiError::BadUserId);
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ClerkApiError::BadUserId)?
            .pop_if_empty()
            .extend(["v1", "users", user_id]);
        let mut attempt = 0;
        let body = loop {
            attempt += 1;
            match self.get(&url).await {
                Ok(body) => break body,
                Err(ClerkApiError::Status(reqwest::StatusCode::NOT_FOUND)) => return Ok(None),
                Err(error) if attempt < ATTEMPTS && retryable(&error) => {
                    let jitter = rand::rng().random_range(100..400);
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(error) => return Err(error),
            }
        };
        let user: User = serde_json::from_slice(&body)?;
        Ok(primary_verified(&user))
    }

    async fn get(&self, url: &url::Url) -> Result<Vec<u8>, ClerkApiError> {
        let mut response = self
            .http
            .get(url.clone())
            .bearer_auth(self.secret_key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ClerkApiError::Unauthorized(status));
        }
        if !status.is_success() {
            return Err(ClerkApiError::Status(status));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(ClerkApiError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ClerkApiError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn retryable(error: &ClerkApiError) -> bool {
    match error {
        ClerkApiError::Status(status) => {
            status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
        }
        ClerkApiError::Http(error) => error.is_connect() || error.is_timeout(),
        _ => false,
    }
}

fn primary_verified(user: &User) -> Option<Email> {
    let primary = user.primary_email_address_id.as_deref()?;
    let address = user.email_addresses.iter().find(|a| a.id == primary)?;
    let verified = address
        .verification
        .as_ref()
        .and_then(|v| v.status.as_deref())
        == Some("verified");
    if !verified {
        return None;
    }
    Email::parse(&address.email_address).ok()
}

impl fmt::Debug for ClerkBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClerkBackend")
            .field("base", &self.base.as_str())
            .field("secret_key", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(value: serde_json::Value) -> User {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_the_verified_primary_address_counts() {
        let addresses = serde_json::json!([
            {"id": "idn_other", "email_address": "other@example.com", "verification": {"status": "verified"}},
            {"id": "idn_main", "email_address": "Main@Example.com", "verification": {"status": "verified"}},
        ]);
        let verified = user(serde_json::json!({
            "id": "user_1", "primary_email_address_id": "idn_main", "email_addresses": addresses,
        }));
        assert_eq!(
            primary_verified(&verified)
                .map(|e| e.to_string())
                .as_deref(),
            Some("main@example.com")
        );
        let unverified = user(serde_json::json!({
            "primary_email_address_id": "idn_x",
            "email_addresses": [{"id": "idn_x", "email_address": "x@example.com", "verification": {"status": "unverified"}}],
        }));
        assert!(primary_verified(&unverified).is_none());
        let none =
            user(serde_json::json!({"primary_email_address_id": null, "email_addresses": []}));
        assert!(primary_verified(&none).is_none());
    }
}
