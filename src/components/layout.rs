use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::{
    domain::Viewer,
    server_fns::auth::{SignOut, whoami},
};

#[component]
pub fn SiteHeader() -> impl IntoView {
    let location = use_location();
    // Refetched on every navigation, so signing in or out shows at once.
    let viewer = Resource::new(move || location.pathname.get(), |_| whoami());
    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-4 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:shadow">
            "Skip to content"
        </a>
        <header class="border-b border-slate-200 bg-white/80 backdrop-blur">
            <div class="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-4 px-4 py-4 sm:px-6">
                <a href="/" class="flex items-center gap-2 text-xl font-bold tracking-tight text-slate-900">
                    <span aria-hidden="true" class="grid h-8 w-8 place-items-center rounded-lg bg-indigo-600 text-sm font-black text-white">
                        "t"
                    </span>
                    "tldw"
                </a>
                <nav aria-label="Main" class="flex flex-wrap items-center gap-1 text-sm font-medium text-slate-600 sm:gap-3">
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match viewer.await {
                                Ok(Some(viewer)) => view! { <SignedInNav viewer /> }.into_any(),
                                _ => view! { <SignedOutNav /> }.into_any(),
                            }
                        })}
                    </Suspense>
                </nav>
            </div>
        </header>
    }
}

const NAV_LINK: &str = "rounded px-2 py-1 hover:bg-slate-100 hover:text-slate-900";

#[component]
fn SignedOutNav() -> impl IntoView {
    view! {
        <a href="/#how-it-works" class=NAV_LINK>"How it works"</a>
        <a href="/#pricing" class=NAV_LINK>"Pricing"</a>
        <a href="/sign-in" class=NAV_LINK>"Sign in"</a>
        <a href="/sign-up" class="rounded-lg bg-indigo-600 px-3 py-1.5 font-semibold text-white hover:bg-indigo-500">"Sign up"</a>
    }
}

/// The org switcher is a `<details>` menu: it opens without JavaScript.
#[component]
fn SignedInNav(viewer: Viewer) -> impl IntoView {
    let location = use_location();
    let path = location.pathname.get_untracked();
    let current_slug = path
        .strip_prefix("/o/")
        .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
        .or(viewer.active_slug.clone());
    let current = viewer
        .orgs
        .iter()
        .find(|o| Some(&o.slug) == current_slug.as_ref())
        .or(viewer.orgs.first())
        .cloned();
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <details class="relative" data-testid="org-switcher">
            <summary class="flex cursor-pointer list-none items-center gap-1 rounded-lg border border-slate-300 bg-white px-3 py-1.5 text-slate-800 hover:bg-slate-50">
                <span class="sr-only">"Organization: "</span>
                {current.map(|o| o.name).unwrap_or_else(|| "No organization".into())}
                <span aria-hidden="true">"▾"</span>
            </summary>
            <ul class="absolute right-0 z-10 mt-2 w-64 rounded-xl border border-slate-200 bg-white p-1 shadow-lg">
                {viewer.orgs.iter().map(|org| view! {
                    <li>
                        <a href=format!("/o/{}", org.slug) class="flex items-center justify-between rounded-lg px-3 py-2 hover:bg-slate-50">
                            <span class="truncate text-slate-800">{org.name.clone()}</span>
                            <span class="text-xs text-slate-500">{org.role.label()}</span>
                        </a>
                    </li>
                }).collect_view()}
                <li class="border-t border-slate-100">
                    <a href="/orgs/new" class="block rounded-lg px-3 py-2 text-indigo-700 hover:bg-slate-50">"+ New organization"</a>
                </li>
            </ul>
        </details>
        <a href="/account" class=NAV_LINK>{viewer.email.clone().unwrap_or_else(|| "Account".into())}</a>
        {viewer.builtin.then(|| view! {
            <ActionForm action=sign_out>
                <button type="submit" class=NAV_LINK>"Sign out"</button>
            </ActionForm>
        })}
    }
}

#[component]
pub fn SiteFooter() -> impl IntoView {
    view! {
        <footer class="border-t border-slate-200 bg-white">
            <div class="mx-auto flex max-w-6xl flex-col gap-2 px-4 py-6 text-sm text-slate-500 sm:flex-row sm:justify-between sm:px-6">
                <p>
                    "tldw: too long; didn't watch. "
                    <a href="/api/docs" class="font-medium text-slate-600 underline hover:text-slate-900">"API"</a>
                </p>
                <p>"Summaries are made once per video and shared, so nobody pays twice."</p>
            </div>
        </footer>
    }
}
