//! Outgoing email over SMTP (`SMTP_URL`, e.g. `smtps://user:pass@smtp.example.com`
//! or `smtp://host:2525?tls=required`). Without it, mail is off and the app
//! shows links to copy instead.

use anyhow::Context;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use crate::domain::Email;

/// Free text someone else chose (an org name), as a mail quotes it: in
/// double quotes, on one line, without control characters or quotes of its
/// own that could end the quotation early.
pub fn quoted(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '"' | '\u{201c}' | '\u{201d}' => '\'',
            c if c.is_control() || c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("\"{clean}\"")
}

#[derive(Clone)]
pub enum Mailer {
    Disabled,
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn new(url: Option<&SecretString>, from: &str) -> anyhow::Result<Mailer> {
        let Some(url) = url else {
            return Ok(Mailer::Disabled);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .context("SMTP_URL is not a valid smtp:// or smtps:// URL")?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = from.parse().context("SMTP_FROM is not a valid mailbox")?;
        Ok(Mailer::Smtp { transport, from })
    }

    pub fn enabled(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Sends the invitation link. `Ok(false)` when mail is off.
    #[tracing::instrument(skip(self, link), fields(to = %to))]
    pub async fn send_invitation(
        &self,
        to: &Email,
        org_name: &str,
        link: &str,
    ) -> anyhow::Result<bool> {
        let Mailer::Smtp { transport, from } = self else {
            return Ok(false);
        };
        let message = Message::builder()
            .from(from.clone())
            .to(to.as_str().parse().context("invalid recipient")?)
            .subject(format!(
                "Invitation to the organization {} on tldw",
                quoted(org_name)
            ))
            .body(format!(
                "Someone invited you to join an organization on tldw, where teams share AI summaries of YouTube videos.\n\n\
                 The organization calls itself {} (a name its members chose, not a message from tldw).\n\n\
                 Accept the invitation (the link works once, for 7 days):\n{link}\n\n\
                 If you weren't expecting this, you can ignore this email. tldw never asks for your password by email.",
                quoted(org_name)
            ))
            .context("could not build the invitation email")?;
        transport
            .send(message)
            .await
            .context("the SMTP server refused the invitation email")?;
        Ok(true)
    }

    /// Sends one plain-text email (account links and notices). `Ok(false)`
    /// when mail is off.
    #[tracing::instrument(skip(self, body), fields(to = %to))]
    pub async fn send_text(&self, to: &Email, subject: &str, body: &str) -> anyhow::Result<bool> {
        let Mailer::Smtp { transport, from } = self else {
            return Ok(false);
        };
        let message = Message::builder()
            .from(from.clone())
            .to(to.as_str().parse().context("invalid recipient")?)
            .subject(subject)
            .body(body.to_owned())
            .context("could not build the email")?;
        transport
            .send(message)
            .await
            .context("the SMTP server refused the email")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn an_org_name_cannot_break_out_of_its_quotes() {
        assert_eq!(quoted("Acme"), "\"Acme\"");
        assert_eq!(
            quoted("Acme\" is suspended.\r\nVisit evil.example \u{201c}now\u{201d}"),
            "\"Acme' is suspended. Visit evil.example 'now'\""
        );
        assert_eq!(quoted("a\u{0}\u{2028}b"), "\"a b\"");
    }
}
