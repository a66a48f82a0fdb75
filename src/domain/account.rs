//! What the account page shows about the signed-in account's own address.

use serde::{Deserialize, Serialize};

/// The signed-in account's email and whether it has been proved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub email: Option<String>,
    /// The account proved it reads mail at `email` (a link it was sent, an
    /// invitation it signed up through, or a password reset).
    pub verified: bool,
    /// A built-in account (email + password here), not a Clerk one: only
    /// these change their password, email or delete themselves here.
    pub builtin: bool,
}

/// Where a "we sent you a link" step stands, for the page to say in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkDelivery {
    /// Emailed.
    Sent,
    /// Mail is not configured on this server: the link is in the server log.
    Logged,
    /// The mail server refused it; try again later.
    Failed,
}

impl LinkDelivery {
    /// A sentence for the page, `what` being e.g. "a verification link".
    pub fn sentence(self, what: &str, to: &str) -> String {
        match self {
            LinkDelivery::Sent => {
                format!("We emailed {what} to {to}. It may take a minute to arrive.")
            }
            LinkDelivery::Logged => format!(
                "Email is not set up on this server, so {what} for {to} was written to the server log. Ask the operator for it."
            ),
            LinkDelivery::Failed => format!(
                "We couldn't email {what} to {to} just now. Please try again in a few minutes."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_delivery_names_the_link_and_the_address() {
        for delivery in [
            LinkDelivery::Sent,
            LinkDelivery::Logged,
            LinkDelivery::Failed,
        ] {
            let text = delivery.sentence("a reset link", "a@example.com");
            assert!(text.contains("a reset link"), "{text}");
            assert!(text.contains("a@example.com"), "{text}");
        }
    }
}
