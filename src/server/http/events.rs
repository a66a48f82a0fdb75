//! `GET /o/{slug}/events`: an org's live updates as Server-Sent Events,
//! for the org's pages (see `components::live`). Signed in as pages are
//! (the session cookie, or Clerk's); another org's stream is 404, signed
//! out is 401, a member past their open streams is 429.
//!
//! The stream first sends an `id` only (no event), so that a browser that
//! reconnects says where it left off; then `usage`, `history`, `billing`
//! and `resync` events, each with its id and the kind as data, and a
//! heartbeat comment when idle so that proxies keep it open.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use std::{convert::Infallible, time::Duration};

use super::AppState;
use crate::{
    error::AppError,
    server::{
        auth::identity,
        live::{Change, Hub, LiveEvent, Subscription},
    },
};

/// How long a browser waits before reconnecting a dropped stream.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

#[tracing::instrument(skip_all, fields(slug = %slug))]
pub async fn org_events(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(outage) = state.db.health().outage() {
        tracing::warn!(%outage, "refused an event stream while the database is down");
        return Err(AppError::DatabaseUnavailable {
            retry_after_seconds: 2,
        });
    }
    let account = state
        .auth
        .authenticate(&state.db, &headers)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let member = identity::member_of(&state.db, &account, &slug).await?;
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let subscription = state
        .live
        .subscribe(member.org.id, member.org.user_id, last_event_id)?;
    let heartbeat = state.live.settings().heartbeat;
    let mut response = Sse::new(events(subscription, state.live.clone()))
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response();
    // nginx and friends would otherwise buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn sse(hub: &Hub, event: LiveEvent) -> Event {
    Event::default()
        .id(hub.event_id(event.id))
        .event(event.change.as_str())
        .data(event.change.as_str())
}

/// The stream's events until the client leaves or the process stops.
fn events(
    subscription: Subscription,
    hub: Hub,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let opening = Event::default()
        .id(hub.event_id(subscription.current))
        .retry(RECONNECT_AFTER);
    let mut first = vec![opening];
    if subscription.resync {
        first.push(sse(
            &hub,
            LiveEvent {
                id: subscription.current,
                change: Change::Resync,
            },
        ));
    }
    first.reverse();
    let stopping = hub.stopping();
    futures_util::stream::unfold(
        (subscription, first, stopping),
        |(mut subscription, mut first, mut stopping)| async move {
            if let Some(event) = first.pop() {
                return Some((Ok(event), (subscription, first, stopping)));
            }
            let next = tokio::select! {
                next = subscription.next() => next,
                _ = stopping.wait_for(|stopping| *stopping) => None,
            }?;
            let event = sse(subscription.hub(), next);
            Some((Ok(event), (subscription, first, stopping)))
        },
    )
}
