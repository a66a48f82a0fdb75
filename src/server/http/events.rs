//! `GET /o/{slug}/events`: an org's live updates as Server-Sent Events,
//! for the org's pages (see `components::live`). Signed in as pages are
//! (the session cookie, or Clerk's); another org's stream is 404, signed
//! out is 401, a member past their open streams is 429.
//!
//! The stream first sends an `id` only (no event), so that a browser that
//! reconnects says where it left off (`Last-Event-ID`; a page opening its
//! first stream says it with `?since=`, the id its render started at);
//! then `usage`, `history`, `billing` and `resync` events, each with its id
//! and the kind as data, and a heartbeat comment when idle so that proxies
//! keep it open.
//!
//! Access is checked again at every heartbeat interval: a stream ends once
//! its session is signed out or expires, or its member leaves or is removed
//! from the org, so a former member hears nothing more about the org. A
//! database outage does not end it (the `resync` after one covers it). The
//! check is a session lookup (a write only every 10 minutes, as for any
//! request) and a membership usually in the identity cache; an open stream
//! counts as use of its session, as an open page's requests would.

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use std::{convert::Infallible, time::Duration};

use super::AppState;
use crate::{
    domain::OrgId,
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
    RawQuery(query): RawQuery,
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
    // The browser's own reconnect says where it was; a first open, where
    // its page's render began.
    let since = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "since")
            .map(|(_, value)| value.into_owned())
    });
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(since.as_deref());
    let subscription = state
        .live
        .subscribe(member.org.id, member.org.user_id, last_event_id)?;
    let heartbeat = state.live.settings().heartbeat;
    let access = Access {
        org: member.org.id,
        state: state.clone(),
        headers,
        slug,
    };
    let mut response = Sse::new(events(subscription, state.live.clone(), access, heartbeat))
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response();
    // nginx and friends would otherwise buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What the stream was opened with, to ask again whether it may go on.
struct Access {
    state: AppState,
    headers: HeaderMap,
    slug: String,
    org: OrgId,
}

impl Access {
    /// Whether the request's session still speaks for a member of the org.
    /// An unavailable database says yes: the stream is not the place to
    /// judge an outage, and the next check will know.
    async fn still_allowed(&self) -> bool {
        let state = &self.state;
        let account = match state.auth.authenticate(&state.db, &self.headers).await {
            Ok(Some(account)) => account,
            Ok(None) => return false,
            Err(error) => return is_unavailable(&error),
        };
        match identity::member_of(&state.db, &account, &self.slug).await {
            Ok(member) => member.org.id == self.org,
            Err(error) => is_unavailable(&error),
        }
    }
}

fn is_unavailable(error: &AppError) -> bool {
    matches!(
        error,
        AppError::Unavailable(_) | AppError::DatabaseUnavailable { .. }
    )
}

fn sse(hub: &Hub, event: LiveEvent) -> Event {
    Event::default()
        .id(hub.event_id(event.id))
        .event(event.change.as_str())
        .data(event.change.as_str())
}

/// The stream's events until the client leaves, loses access (checked
/// every `recheck`), or the process stops.
fn events(
    subscription: Subscription,
    hub: Hub,
    access: Access,
    recheck: Duration,
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
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + recheck, recheck);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = Open {
        subscription,
        first,
        stopping,
        access,
        checks,
    };
    futures_util::stream::unfold(open, |mut open| async move {
        if let Some(event) = open.first.pop() {
            return Some((Ok(event), open));
        }
        loop {
            enum Wake {
                Event(Option<LiveEvent>),
                Stopping,
                Check,
            }
            let wake = tokio::select! {
                next = open.subscription.next() => Wake::Event(next),
                _ = open.stopping.wait_for(|stopping| *stopping) => Wake::Stopping,
                _ = open.checks.tick() => Wake::Check,
            };
            match wake {
                Wake::Event(next) => {
                    let event = sse(open.subscription.hub(), next?);
                    return Some((Ok(event), open));
                }
                Wake::Stopping => return None,
                Wake::Check => {
                    if !open.access.still_allowed().await {
                        tracing::info!(slug = %open.access.slug, "closed an event stream that lost its access");
                        return None;
                    }
                }
            }
        }
    })
}

/// An open stream's state between events.
struct Open {
    subscription: Subscription,
    /// Frames to send before any event, last first.
    first: Vec<Event>,
    stopping: tokio::sync::watch::Receiver<bool>,
    access: Access,
    checks: tokio::time::Interval,
}
