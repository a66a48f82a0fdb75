//! Outgoing email over SMTP (`SMTP_URL`, e.g. `smtps://user:pass@smtp.example.com`
//! or `smtp://host:2525?tls=required`). Without it, mail is off and the app
//! shows links to copy instead.

use anyhow::Context;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use crate::domain::Email;

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
            .subject(format!("You're invited to {org_name} on tldw"))
            .body(format!(
                "You've been invited to join {org_name} on tldw, where your team shares AI summaries of YouTube videos.\n\n\
                 Accept the invitation (the link works once, for 7 days):\n{link}\n\n\
                 If you weren't expecting this, you can ignore this email."
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
