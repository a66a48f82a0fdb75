//! Invitation email through a real SMTP conversation with a local server.

use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use tldw::{domain::Email, server::clients::mailer::Mailer};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// A minimal SMTP server (RFC 5321 happy path) that keeps every message.
pub(crate) async fn fake_smtp(refuse_recipients: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let store = messages.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write
                    .write_all(b"220 fake.smtp ESMTP ready\r\n")
                    .await
                    .unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-fake.smtp\r\n250 8BITMIME\r\n",
                        "MAIL" => b"250 2.1.0 ok\r\n",
                        "RCPT" if refuse_recipients => b"550 5.1.1 no such user\r\n",
                        "RCPT" => b"250 2.1.5 ok\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 end with <CRLF>.<CRLF>\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, messages)
}

#[tokio::test]
async fn invitations_are_emailed_through_smtp() {
    let (port, messages) = fake_smtp(false).await;
    let url = SecretString::from(format!("smtp://127.0.0.1:{port}"));
    let mailer = Mailer::new(Some(&url), "tldw <no-reply@tldw.test>").unwrap();
    let to = Email::parse("bob@example.com").unwrap();
    let sent = mailer
        .send_invitation(&to, "Acme", "http://tldw.test/invite/abc.def")
        .await
        .unwrap();
    assert!(sent);
    let messages = messages.lock().unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(message.contains("To: bob@example.com"), "{message}");
    assert!(
        message.contains("Subject: Invitation to the organization \"Acme\" on tldw"),
        "{message}"
    );
    assert!(
        message.contains("http://tldw.test/invite/abc.def"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_email_is_an_error_not_a_panic() {
    let (port, messages) = fake_smtp(true).await;
    let url = SecretString::from(format!("smtp://127.0.0.1:{port}"));
    let mailer = Mailer::new(Some(&url), "tldw <no-reply@tldw.test>").unwrap();
    let to = Email::parse("nobody@example.com").unwrap();
    let error = mailer
        .send_invitation(&to, "Acme", "http://x/invite/y")
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("refused"), "{error:#}");
    assert!(messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_smtp_mail_is_off() {
    let mailer = Mailer::new(None, "tldw <no-reply@tldw.test>").unwrap();
    assert!(!mailer.enabled());
    let to = Email::parse("bob@example.com").unwrap();
    assert!(
        !mailer
            .send_invitation(&to, "Acme", "http://x")
            .await
            .unwrap()
    );
}
