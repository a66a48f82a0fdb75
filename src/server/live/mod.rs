//! Live updates across every process: PostgreSQL triggers NOTIFY
//! `tldw_org_events` with `<org id> <kind>` when an org's numbers move
//! (migration 13), this process's one LISTEN connection ([`listener`])
//! hands each notification to the [`Hub`], and the hub fans it out in
//! memory to the org's open event streams (`GET /o/{slug}/events`).
//!
//! Notifications carry no tenant data and streams only say *what kind* of
//! thing changed: a page refetches through its normal, RLS-checked server
//! functions.
//!
//! Notifications are lost while the LISTEN connection is down, so after it
//! comes back every stream is told to `resync` (refetch everything). Event
//! ids are `<epoch>-<n>`: `n` grows per process, `epoch` names the process,
//! so a `Last-Event-ID` from another process (or an earlier run) is never
//! mistaken for one of ours.

mod listener;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};
use tokio::sync::{broadcast, watch};

use crate::{
    domain::{OrgId, UserId},
    error::AppError,
    server::{config::LiveSettings, db::Db},
};

/// What a stream announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The quota used, the ledger or the limit: meter, cards, chart.
    Usage,
    /// The org's list of summaries.
    History,
    /// The subscription, payments or the webhook log.
    Billing,
    /// Something may have been missed: refetch everything.
    Resync,
}

impl Change {
    /// The SSE event name, which is also the payload's kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Usage => "usage",
            Change::History => "history",
            Change::Billing => "billing",
            Change::Resync => "resync",
        }
    }

    fn parse(kind: &str) -> Option<Change> {
        match kind {
            "usage" => Some(Change::Usage),
            "history" => Some(Change::History),
            "billing" => Some(Change::Billing),
            _ => None,
        }
    }
}

/// One notification as the triggers send it: `<org uuid> <kind>`.
fn parse_payload(payload: &str) -> Option<(OrgId, Change)> {
    let (org, kind) = payload.split_once(' ')?;
    let org = uuid::Uuid::parse_str(org).ok()?;
    Some((OrgId::from_uuid(org), Change::parse(kind)?))
}

/// An event on its way to an org's streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveEvent {
    pub id: u64,
    pub change: Change,
}

/// How many events a stream may fall behind before it is told to resync.
const PER_ORG_BUFFER: usize = 64;
/// Orgs whose last event id is remembered (for `Last-Event-ID`); past it,
/// quiet ones are forgotten and their old ids answered with a resync.
const REMEMBERED_ORGS: usize = 100_000;

/// The process's fan-out of org events, and its count of open streams.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
    task: Arc<tokio::task::AbortHandle>,
}

struct Inner {
    settings: LiveSettings,
    /// Names this process in event ids.
    epoch: String,
    /// The id of the last event handed out (0: none yet).
    last_id: AtomicU64,
    /// Ids at or below this may have missed a notification (the listener
    /// reconnected, or the org was forgotten).
    resynced_at: AtomicU64,
    orgs: Mutex<Orgs>,
    streams: Mutex<HashMap<UserId, usize>>,
    /// The LISTEN connection is up: events can be delivered.
    connected: AtomicBool,
    /// `video_ready` notifications for the summary waiters.
    video_ready: broadcast::Sender<String>,
    /// Set on shutdown: every stream ends.
    stopping: watch::Sender<bool>,
}

#[derive(Default)]
struct Orgs {
    map: HashMap<OrgId, OrgState>,
}

#[derive(Default)]
struct OrgState {
    /// Only while this process holds a stream of the org.
    sender: Option<broadcast::Sender<LiveEvent>>,
    last_id: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these maps leaves them consistent (plain
    // inserts and counters), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    /// Connects the LISTEN connection (start-up fails if it cannot) and
    /// starts the task that keeps it up.
    pub async fn start(db: &Db, settings: LiveSettings) -> anyhow::Result<Hub> {
        let (video_ready, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            settings,
            epoch: format!("{:08x}", rand::random::<u32>()),
            last_id: AtomicU64::new(0),
            resynced_at: AtomicU64::new(0),
            orgs: Mutex::new(Orgs::default()),
            streams: Mutex::new(HashMap::new()),
            connected: AtomicBool::new(false),
            video_ready,
            stopping: watch::Sender::new(false),
        });
        let task = listener::start(db.clone(), inner.clone()).await?;
        Ok(Hub {
            inner,
            task: Arc::new(task),
        })
    }

    /// `video_ready` notifications (a video id each), for `VideoWaiter`.
    pub fn video_ready(&self) -> broadcast::Sender<String> {
        self.inner.video_ready.clone()
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.inner.settings
    }

    /// Whether notifications are being received right now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Ends every stream and the LISTEN connection (shutdown): an open
    /// stream would otherwise hold graceful shutdown for its whole grace.
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
        self.task.abort();
    }

    /// A stream's view of shutdown.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// `<epoch>-<n>`.
    pub fn event_id(&self, id: u64) -> String {
        format!("{}-{id}", self.inner.epoch)
    }

    /// The id a stream opened now would start at: a page takes it before it
    /// reads its data, and its stream opens with it (`?since=`) so that a
    /// change in between is announced with a `resync` (see [`Hub::subscribe`]).
    pub fn mark(&self) -> String {
        self.event_id(self.inner.last_id.load(Ordering::Acquire))
    }

    /// Opens a stream for `member` of `org`. `last_event_id` is the
    /// browser's `Last-Event-ID` when it reconnects: the first event is a
    /// `resync` unless nothing of this org can have been missed since.
    ///
    /// 503 when notifications cannot be received (the database is down),
    /// 429 past the per-member limit.
    pub fn subscribe(
        &self,
        org: OrgId,
        member: UserId,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, AppError> {
        if !self.is_connected() {
            return Err(AppError::DatabaseUnavailable {
                retry_after_seconds: 2,
            });
        }
        let guard = StreamGuard::take(self.inner.clone(), member)?;
        let (receiver, org_last) = {
            let mut orgs = lock(&self.inner.orgs);
            let state = orgs.map.entry(org).or_default();
            let sender = state
                .sender
                .get_or_insert_with(|| broadcast::channel(PER_ORG_BUFFER).0);
            (sender.subscribe(), state.last_id)
        };
        let current = self.inner.last_id.load(Ordering::Acquire);
        let resync = last_event_id.is_some_and(|seen| !self.honours(seen, org_last, current));
        Ok(Subscription {
            org,
            current,
            resync,
            receiver: Some(receiver),
            _guard: guard,
            hub: self.clone(),
        })
    }

    /// Whether a stream that saw `seen` last has missed nothing: it is one
    /// of this process's ids, no later than now, and no event of the org
    /// (nor a listener reconnect) came after it.
    fn honours(&self, seen: &str, org_last: u64, current: u64) -> bool {
        let Some((epoch, n)) = seen.trim().split_once('-') else {
            return false;
        };
        let Ok(n) = n.parse::<u64>() else {
            return false;
        };
        epoch == self.inner.epoch
            && n <= current
            && n >= org_last
            && n >= self.inner.resynced_at.load(Ordering::Acquire)
    }

    /// The number of streams open on this process.
    pub fn open_streams(&self) -> usize {
        lock(&self.inner.streams).values().sum()
    }
}

impl Inner {
    fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Hands a notification to the org's streams on this process (if any).
    fn dispatch(&self, org: OrgId, change: Change) {
        let mut orgs = lock(&self.orgs);
        if orgs.map.len() >= REMEMBERED_ORGS && !orgs.map.contains_key(&org) {
            self.forget_quiet_orgs(&mut orgs);
        }
        let id = self.next_id();
        let state = orgs.map.entry(org).or_default();
        state.last_id = id;
        if let Some(sender) = &state.sender {
            // No receiver left is fine: the last stream just closed.
            let _ = sender.send(LiveEvent { id, change });
        }
    }

    /// Forgets the orgs without a stream here; their old ids then resync.
    fn forget_quiet_orgs(&self, orgs: &mut Orgs) {
        orgs.map.retain(|_, state| state.sender.is_some());
        self.resynced_at
            .fetch_max(self.last_id.load(Ordering::Acquire), Ordering::AcqRel);
    }

    /// After the LISTEN connection came back: anything may have been
    /// missed, so every stream refetches everything.
    fn resync_all(&self) {
        let orgs = lock(&self.orgs);
        let id = self.next_id();
        self.resynced_at.fetch_max(id, Ordering::AcqRel);
        for sender in orgs.map.values().filter_map(|s| s.sender.as_ref()) {
            let _ = sender.send(LiveEvent {
                id,
                change: Change::Resync,
            });
        }
    }

    /// The last stream of `org` here closed: stop keeping its channel.
    fn release(&self, org: OrgId) {
        let mut orgs = lock(&self.orgs);
        if let Some(state) = orgs.map.get_mut(&org)
            && state
                .sender
                .as_ref()
                .is_some_and(|s| s.receiver_count() == 0)
        {
            state.sender = None;
        }
    }
}

/// Counts one open stream of a member (and the process gauge) while alive.
struct StreamGuard {
    inner: Arc<Inner>,
    member: UserId,
}

impl StreamGuard {
    fn take(inner: Arc<Inner>, member: UserId) -> Result<StreamGuard, AppError> {
        {
            let mut streams = lock(&inner.streams);
            let open = streams.entry(member).or_default();
            if *open >= inner.settings.max_streams_per_member {
                return Err(AppError::TooManyStreams {
                    limit: inner.settings.max_streams_per_member,
                });
            }
            *open += 1;
        }
        crate::server::metrics::sse_stream_opened();
        Ok(StreamGuard { inner, member })
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = lock(&self.inner.streams);
        if let Some(open) = streams.get_mut(&self.member) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.member);
            }
        }
        crate::server::metrics::sse_stream_closed();
    }
}

/// One open stream: its org's events from the moment it subscribed.
pub struct Subscription {
    org: OrgId,
    /// The id current when it opened (sent first, so that a reconnect can
    /// say where it left off).
    pub current: u64,
    /// The browser reconnected and may have missed something.
    pub resync: bool,
    receiver: Option<broadcast::Receiver<LiveEvent>>,
    _guard: StreamGuard,
    hub: Hub,
}

impl Subscription {
    /// The next event; a stream that fell behind gets a `resync`. `None`
    /// once the hub is gone.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        let receiver = self.receiver.as_mut()?;
        match receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(LiveEvent {
                id: self.hub.inner.last_id.load(Ordering::Acquire),
                change: Change::Resync,
            }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The receiver first, so that the count below no longer sees it.
        self.receiver.take();
        self.hub.inner.release(self.org);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_only_in_the_triggers_shape() {
        let org = uuid::Uuid::new_v4();
        assert_eq!(
            parse_payload(&format!("{org} usage")),
            Some((OrgId::from_uuid(org), Change::Usage))
        );
        assert_eq!(
            parse_payload(&format!("{org} billing")),
            Some((OrgId::from_uuid(org), Change::Billing))
        );
        for bad in [
            String::new(),
            format!("{org}"),
            format!("{org} resync"),
            format!("{org} usage extra"),
            "not-a-uuid usage".to_owned(),
        ] {
            assert_eq!(parse_payload(&bad), None, "{bad:?}");
        }
    }
}
