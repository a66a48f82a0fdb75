//! The process's one LISTEN connection, kept up by a supervised task: it
//! hands `tldw_org_events` to the hub and `video_ready` to the summary
//! waiters. When the connection breaks (a database restart), it reconnects
//! with a jittered, doubling backoff and then tells every stream to resync,
//! because whatever was notified meanwhile is gone.

use rand::Rng;
use sqlx::postgres::PgListener;
use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use super::{Inner, parse_payload};
use crate::server::db::Db;

pub const ORG_EVENTS: &str = "tldw_org_events";
pub const VIDEO_READY: &str = "video_ready";

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Connects now (so start-up fails loudly on a bad `DATABASE_LISTEN_URL`),
/// then supervises the connection until aborted.
pub(super) async fn start(db: Db, inner: Arc<Inner>) -> anyhow::Result<tokio::task::AbortHandle> {
    let listener = connect(&db).await?;
    inner.connected.store(true, Ordering::Release);
    Ok(tokio::spawn(supervise(db, inner, listener)).abort_handle())
}

#[tracing::instrument(skip_all)]
async fn connect(db: &Db) -> Result<PgListener, sqlx::Error> {
    let mut listener = db.listener().await?;
    listener.listen_all([ORG_EVENTS, VIDEO_READY]).await?;
    Ok(listener)
}

async fn supervise(db: Db, inner: Arc<Inner>, listener: PgListener) {
    let mut listener = Some(listener);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(current) = listener.as_mut() else {
            match connect(&db).await {
                Ok(connected) => {
                    tracing::info!("LISTEN connection is back; streams resync");
                    listener = Some(connected);
                    backoff = FIRST_BACKOFF;
                    inner.connected.store(true, Ordering::Release);
                    inner.resync_all();
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "LISTEN connection failed; retrying");
                    let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
                    tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        match current.try_recv().await {
            Ok(Some(notification)) => match notification.channel() {
                ORG_EVENTS => match parse_payload(notification.payload()) {
                    Some((org, change)) => inner.dispatch(org, change),
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "ignored a malformed org event"
                    ),
                },
                _ => {
                    let _ = inner.video_ready.send(notification.payload().to_owned());
                }
            },
            // sqlx lost the connection and made a new one by itself.
            Ok(None) => {
                tracing::info!("LISTEN connection was replaced; streams resync");
                inner.resync_all();
            }
            // The app's pool is closing: the process is stopping.
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                inner.connected.store(false, Ordering::Release);
                listener = None;
            }
        }
    }
}
