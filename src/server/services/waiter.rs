//! Wakes requests waiting for a video in any process: one LISTEN per
//! process on `video_ready`, fanned out in memory. Notifications can be
//! missed (reconnects), so waiters also re-check, backing off from 1 s to
//! 10 s: the notification is the fast path, polling only a backstop, and
//! many waiters polling every 500 ms for a long video would load the pool
//! (security review 18g).

use std::time::Duration;
use tokio::sync::broadcast;

use crate::server::db::Db;

#[derive(Clone)]
pub struct VideoWaiter {
    sender: broadcast::Sender<String>,
    /// Only when it listens on a connection of its own ([`VideoWaiter::start`]).
    task: Option<tokio::task::AbortHandle>,
}

/// How soon a waiter first re-checks without a notification…
pub const FIRST_POLL: Duration = Duration::from_secs(1);
/// …and the longest it ever goes without re-checking.
pub const LAST_POLL: Duration = Duration::from_secs(10);

/// The wait after `poll`: doubled, at most [`LAST_POLL`].
pub fn next_poll(poll: Duration) -> Duration {
    (poll * 2).clamp(FIRST_POLL, LAST_POLL)
}

impl VideoWaiter {
    /// Starts the listener task; it reconnects by itself if the database
    /// connection drops.
    pub async fn start(db: &Db) -> anyhow::Result<VideoWaiter> {
        let (sender, _) = broadcast::channel(1024);
        let mut listener = db.listener().await?;
        listener.listen("video_ready").await?;
        let fan_out = sender.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        let _ = fan_out.send(notification.payload().to_owned());
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(error) => {
                        tracing::warn!(%error, "video_ready listener error; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
        .abort_handle();
        Ok(VideoWaiter {
            sender,
            task: Some(task),
        })
    }

    /// Fed by the process's one LISTEN connection (`live::Hub::video_ready`)
    /// instead of a connection of its own.
    pub fn on(sender: broadcast::Sender<String>) -> VideoWaiter {
        VideoWaiter { sender, task: None }
    }

    /// Ends the LISTEN connection; the pool cannot close while it is held.
    pub fn stop(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Resolves when `video_id` is notified or `poll` passes, whichever
    /// comes first; the caller then re-reads the row.
    pub async fn nudge(
        &self,
        receiver: &mut broadcast::Receiver<String>,
        video_id: &str,
        poll: Duration,
    ) {
        let wait = async {
            loop {
                match receiver.recv().await {
                    Ok(id) if id == video_id => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let _ = tokio::time::timeout(poll, wait).await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_from_one_to_ten_seconds() {
        let mut poll = FIRST_POLL;
        let mut seen = vec![poll.as_secs()];
        for _ in 0..6 {
            poll = next_poll(poll);
            seen.push(poll.as_secs());
        }
        assert_eq!(seen, [1, 2, 4, 8, 10, 10, 10]);
    }
}
