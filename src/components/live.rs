//! Live org updates as signals. The org shell provides one [`OrgLive`] per
//! org page; views put the tick of the data they show into their resource's
//! source, so an event from the org's stream refetches exactly that data.
//!
//! Without JavaScript (and on the server) the ticks never move, and pages
//! render the numbers as they were at load.

use leptos::prelude::*;

/// One counter per kind of change an org's event stream announces.
#[derive(Clone, Copy, Debug)]
pub struct OrgLive {
    /// Quota used or limit changed: the meter, the stat cards, the chart.
    pub usage: RwSignal<u64>,
    /// A summary was requested or became ready: the history lists.
    pub history: RwSignal<u64>,
    /// The plan or subscription changed: the billing page.
    pub billing: RwSignal<u64>,
}

impl OrgLive {
    fn inert() -> Self {
        Self {
            usage: RwSignal::new(0),
            history: RwSignal::new(0),
            billing: RwSignal::new(0),
        }
    }
}

/// Called once by the org shell. In the browser it subscribes to the org's
/// event stream (`GET /o/{slug}/events`, see `server::live`), bumps the
/// ticks by event type, closes the stream on cleanup and opens another when
/// the slug changes.
///
/// `since` is where the page's render began (`Hub::mark`): the first stream
/// opens from there, so a change between the render and the stream is
/// announced rather than missed.
pub fn provide_org_live(
    slug: impl Fn() -> String + Send + Sync + 'static,
    since: Option<String>,
) -> OrgLive {
    let live = OrgLive::inert();
    #[cfg(feature = "hydrate")]
    browser::subscribe(slug, since, live);
    #[cfg(not(feature = "hydrate"))]
    let _ = (slug, since);
    provide_context(live);
    live
}

/// The org's ticks, or inert ones outside an org shell.
pub fn use_org_live() -> OrgLive {
    use_context::<OrgLive>().unwrap_or_else(OrgLive::inert)
}

#[cfg(feature = "hydrate")]
impl OrgLive {
    fn bump(&self, event: &str) {
        let tick = |signal: RwSignal<u64>| signal.update(|n| *n = n.wrapping_add(1));
        match event {
            "usage" => tick(self.usage),
            "history" => tick(self.history),
            "billing" => tick(self.billing),
            // Something may have been missed: refetch everything.
            _ => {
                tick(self.usage);
                tick(self.history);
                tick(self.billing);
            }
        }
    }
}

/// The `EventSource` side. The browser reconnects a dropped stream by
/// itself (sending `Last-Event-ID`, so the server says `resync` if needed);
/// a refused one (the database was down, 429…) is closed for good, so it is
/// opened again here after a growing pause, and everything refetched.
#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use std::time::Duration;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{Event, EventSource, MessageEvent};

    use super::OrgLive;

    const EVENTS: [&str; 4] = ["usage", "history", "billing", "resync"];
    const FIRST_RETRY: Duration = Duration::from_secs(2);
    const MAX_RETRY: Duration = Duration::from_secs(60);

    /// The open stream and the callbacks it holds (freed with it).
    struct Connection {
        slug: String,
        source: EventSource,
        _handlers: Vec<Closure<dyn FnMut(Event)>>,
    }

    impl Drop for Connection {
        fn drop(&mut self) {
            self.source.close();
        }
    }

    type Current = StoredValue<Option<Connection>, LocalStorage>;

    /// An id as the server makes them (`<epoch>-<n>`), safe in a query.
    fn is_event_id(id: &str) -> bool {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }

    pub fn subscribe(
        slug: impl Fn() -> String + Send + Sync + 'static,
        since: Option<String>,
        live: OrgLive,
    ) {
        let current: Current = StoredValue::new_local(None);
        Effect::new(move |_| {
            let slug = slug();
            // Dropping the old connection closes it.
            current.set_value(None);
            if !slug.is_empty() {
                // Another org's data is read after the mark too, so the mark
                // stays right (at worst a needless resync).
                let url = match since.as_deref().filter(|id| is_event_id(id)) {
                    Some(since) => format!("/o/{slug}/events?since={since}"),
                    None => format!("/o/{slug}/events"),
                };
                current.set_value(connect(slug, url, live, current, FIRST_RETRY, false));
            }
        });
        on_cleanup(move || {
            let _ = current.try_set_value(None);
        });
    }

    fn connect(
        slug: String,
        url: String,
        live: OrgLive,
        current: Current,
        retry: Duration,
        reopened: bool,
    ) -> Option<Connection> {
        let source = EventSource::new(&url).ok()?;
        let mut handlers: Vec<Closure<dyn FnMut(Event)>> = Vec::new();
        for name in EVENTS {
            let on_event = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                if let Some(event) = event.dyn_ref::<MessageEvent>() {
                    live.bump(&event.type_());
                }
            });
            let _ =
                source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
            handlers.push(on_event);
        }
        let mut healthy = false;
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            // A stream opened anew (not the browser's own reconnect) knows
            // nothing of what happened while there was none.
            if reopened && !healthy {
                live.bump("resync");
            }
            healthy = true;
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        handlers.push(on_open);
        let on_error = {
            let (slug, source) = (slug.clone(), source.clone());
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                if source.ready_state() != EventSource::CLOSED {
                    // The browser is reconnecting by itself.
                    return;
                }
                let slug = slug.clone();
                set_timeout(
                    move || {
                        let still_wanted = current
                            .try_with_value(|c| c.as_ref().is_some_and(|c| c.slug == slug))
                            .unwrap_or(false);
                        if still_wanted {
                            let next = (retry * 2).min(MAX_RETRY);
                            // Reopened: it resyncs on open whatever it says.
                            let url = format!("/o/{slug}/events");
                            current.set_value(connect(slug, url, live, current, next, true));
                        }
                    },
                    retry,
                );
            })
        };
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        handlers.push(on_error);
        Some(Connection {
            slug,
            source,
            _handlers: handlers,
        })
    }
}
