//! `/o/:slug/…`: the frame around every org page. It starts the org's live
//! updates once (`provide_org_live`) and shows the quota meter, live, above
//! the page itself.

use leptos::prelude::*;
use leptos_router::components::Outlet;

use super::org_home::slug_param;
use crate::{components::live::provide_org_live, domain::QuotaView, server_fns::usage::get_quota};

#[component]
pub fn OrgShell() -> impl IntoView {
    // First, before any of the page's data is read: a change after this
    // point reaches the page, live or as a `resync` when its stream opens.
    let since = SharedValue::new(live_mark).into_inner();
    let slug = slug_param();
    let live = provide_org_live(slug, since.clone());
    let quota = Resource::new(
        move || (slug(), live.usage.get()),
        |(slug, _)| get_quota(slug),
    );
    view! {
        // A Transition: a live refetch keeps the old meter until the new
        // numbers arrive, instead of flashing empty.
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                quota.await.ok().flatten().map(|quota| view! { <ShellMeter quota slug=slug() /> })
            })}
        </Transition>
        <div class="contents" data-live-since=since>
            <Outlet />
        </div>
    }
}

/// Where this process's event streams stand (see `Hub::mark`); only the
/// server knows, and the browser gets it with the page.
#[cfg(feature = "ssr")]
fn live_mark() -> Option<String> {
    use_context::<crate::server::http::AppState>().map(|state| state.live.mark())
}

#[cfg(not(feature = "ssr"))]
fn live_mark() -> Option<String> {
    None
}

/// One line under the site header: the plan, used of limit, a thin bar and
/// when it resets.
#[component]
fn ShellMeter(quota: QuotaView, slug: String) -> impl IntoView {
    let percent = if quota.limit > 0 {
        (quota.used * 100 / quota.limit).clamp(0, 100)
    } else {
        100
    };
    let bar = if quota.used >= quota.limit {
        "bg-rose-500"
    } else if percent >= 80 {
        "bg-amber-500"
    } else {
        "bg-indigo-600"
    };
    let days = quota.resets_in_days;
    view! {
        <div class="border-b border-slate-200 bg-white" data-testid="shell-quota">
            <div class="mx-auto flex max-w-6xl flex-wrap items-center gap-x-4 gap-y-1 px-4 py-2 text-sm sm:px-6">
                <a href=format!("/o/{slug}/billing") class="rounded bg-slate-100 px-2 py-0.5 text-xs font-semibold text-slate-700 hover:bg-slate-200">
                    {format!("{} plan", quota.plan.label())}
                </a>
                <span class="font-medium text-slate-900" data-testid="shell-quota-used">
                    {format!("{} of {} summaries used", quota.used, quota.limit)}
                </span>
                <div class="h-1.5 w-24 overflow-hidden rounded-full bg-slate-100 sm:w-40" role="progressbar"
                    aria-valuemin="0" aria-valuemax=quota.limit aria-valuenow=quota.used aria-label="Summaries used this period">
                    <div class=format!("h-full rounded-full {bar}") style=format!("width: {percent}%")></div>
                </div>
                <span class="text-slate-600">{format!("resets in {days} day{} ({})", if days == 1 { "" } else { "s" }, quota.resets_on)}</span>
            </div>
        </div>
    }
}
