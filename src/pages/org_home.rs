//! `/o/:slug`: the org dashboard: the link box, the quota meter, spend and
//! recent summaries.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    components::{
        form::{ErrorBanner, FormErrors, SubmitButton},
        live::provide_org_live,
        load_error::{LoadError, urlencode},
        quota_meter::QuotaMeter,
    },
    domain::{Dashboard, OrgPage, format_dollars},
    error::AppError,
    server_fns::{
        orgs::get_org,
        summaries::{Summarize, get_dashboard},
    },
};

pub fn slug_param() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("slug").unwrap_or_default()
}

#[component]
pub fn OrgHome() -> impl IntoView {
    let slug = slug_param();
    let live = provide_org_live(slug);
    let query = use_query_map();
    let filter = move || query.read().get("q");
    let cursor = move || query.read().get("cursor");
    let summarize = ServerAction::<Summarize>::new();
    let data = Resource::new(
        move || {
            (
                slug(),
                filter(),
                cursor(),
                live.usage.get(),
                live.history.get(),
            )
        },
        |(slug, filter, cursor, _, _)| async move {
            (
                get_org(slug.clone()).await,
                get_dashboard(slug, filter, cursor).await,
            )
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    (Ok(page), Ok(dashboard)) => view! { <DashboardBody page dashboard summarize filter=filter().unwrap_or_default() /> }.into_any(),
                    (Err(error), _) | (_, Err(error)) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DashboardBody(
    page: OrgPage,
    dashboard: Dashboard,
    summarize: ServerAction<Summarize>,
    filter: String,
) -> impl IntoView {
    let slug = page.org.slug.clone();
    let errors = FormErrors::of(summarize);
    let quota_hit = Signal::derive(move || {
        matches!(
            summarize.value().get(),
            Some(Err(AppError::QuotaExceeded { .. }))
        )
    });
    let base = format!("/o/{slug}");
    let (settings_href, form_slug) = (format!("/o/{slug}/settings"), slug.clone());
    let billing_href = format!("/o/{slug}/billing");
    view! {
        <Title text=page.org.name.clone() />
        <div class="mx-auto max-w-4xl space-y-8 px-4 py-10 sm:px-6">
            <header class="flex flex-wrap items-end justify-between gap-4">
                <div>
                    <p class="text-sm text-slate-500">"Organization"</p>
                    <h1 class="text-3xl font-bold tracking-tight" data-testid="org-name">{page.org.name.clone()}</h1>
                    <p class="mt-1 text-sm text-slate-600">
                        "You're " {article(page.org.role.label())} " " <strong>{page.org.role.label().to_lowercase()}</strong>
                        " · " {page.members.len()} {if page.members.len() == 1 { " member" } else { " members" }}
                    </p>
                </div>
                <nav class="flex gap-2" aria-label="Organization">
                    <a href=billing_href.clone() class="rounded-lg border border-slate-300 bg-white px-4 py-2 text-sm font-semibold hover:bg-slate-50">
                        "Billing"
                    </a>
                    <a href=settings_href class="rounded-lg border border-slate-300 bg-white px-4 py-2 text-sm font-semibold hover:bg-slate-50">
                        "Members & settings"
                    </a>
                </nav>
            </header>

            <section class="space-y-5 rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
                <div>
                    <h2 class="text-lg font-semibold">"Summarize a video"</h2>
                    <p class="mt-1 text-sm text-slate-600">
                        "Paste a YouTube link. Every video is summarized once and shared, so a cached one arrives instantly."
                        {dashboard.built_in_summarizer.then(|| view! {
                            " " <span class="rounded bg-amber-50 px-1.5 py-0.5 text-xs font-medium text-amber-800">"Built-in offline summarizer"</span>
                        })}
                    </p>
                </div>
                <ActionForm action=summarize attr:class="flex flex-col gap-3 sm:flex-row sm:items-start">
                    <input type="hidden" name="slug" value=form_slug />
                    <div class="flex-1 space-y-1">
                        <label for="summarize-link" class="sr-only">"YouTube link"</label>
                        <input id="summarize-link" name="link" type="text" inputmode="url" required=true autocomplete="off"
                            placeholder="https://www.youtube.com/watch?v=…"
                            aria-describedby="summarize-link-error"
                            class="block w-full rounded-xl border border-slate-300 bg-white px-4 py-3 shadow-sm outline-none focus:border-indigo-500 focus:ring-4 focus:ring-indigo-100" />
                        <p id="summarize-link-error" class="text-sm text-rose-700" role="alert">{move || errors.field("link").get()}</p>
                    </div>
                    <SubmitButton label="Summarize" pending=summarize.pending() />
                </ActionForm>
                <div data-testid="summarize-error"><ErrorBanner error=errors.general() /></div>
                {move || quota_hit.get().then(|| view! {
                    <p class="text-sm text-slate-700">
                        <a href=billing_href.clone() class="font-semibold text-indigo-700 hover:underline" data-testid="upgrade-link">"Upgrade for more summaries"</a>
                    </p>
                })}
                <QuotaMeter quota=dashboard.quota.clone() />
                <p class="text-sm text-slate-600" data-testid="spend">
                    "AI spend this period: " <strong>{format_dollars(dashboard.spend_micros)}</strong>
                    " · saved by the shared cache: " <strong>{format_dollars(dashboard.saved_micros)}</strong>
                </p>
            </section>

            <section class="space-y-4">
                <div class="flex flex-wrap items-center justify-between gap-3">
                    <h2 class="text-lg font-semibold">"Recent summaries"</h2>
                    <form method="get" action=base.clone() class="flex gap-2" role="search">
                        <label for="history-filter" class="sr-only">"Filter by title"</label>
                        <input id="history-filter" name="q" type="search" value=filter.clone() placeholder="Filter by title"
                            class="rounded-lg border border-slate-300 bg-white px-3 py-1.5 text-sm" />
                        <button type="submit" class="rounded-lg border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium hover:bg-slate-50">"Filter"</button>
                    </form>
                </div>
                {if dashboard.items.is_empty() {
                    view! {
                        <p class="rounded-2xl border border-dashed border-slate-300 p-8 text-center text-slate-500" data-testid="history-empty">
                            {if filter.is_empty() { "No summaries yet. Paste a link above to make the first one." } else { "No summaries match that filter." }}
                        </p>
                    }.into_any()
                } else {
                    view! {
                        <ul role="list" class="divide-y divide-slate-100 rounded-2xl border border-slate-200 bg-white" data-testid="history">
                            {dashboard.items.iter().map(|item| view! {
                                <li>
                                    <a href=format!("/o/{slug}/v/{}", item.video_id) class="flex items-center justify-between gap-4 px-4 py-3 hover:bg-slate-50">
                                        <span class="truncate font-medium text-slate-900">{item.title.clone().unwrap_or_else(|| item.video_id.clone())}</span>
                                        <span class="shrink-0 text-sm text-slate-500">
                                            {item.from_cache.then(|| view! { <span class="mr-2 rounded bg-emerald-50 px-1.5 py-0.5 text-xs text-emerald-800">"from cache"</span> })}
                                            {item.requested_by.clone().map(|who| view! { <span class="mr-2" data-testid="requested-by">{who}</span> })}
                                            {item.requested_on.clone()}
                                        </span>
                                    </a>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
                {dashboard.next_cursor.clone().map(|cursor| {
                    let href = if filter.is_empty() {
                        format!("{base}?cursor={}", urlencode(&cursor))
                    } else {
                        format!("{base}?q={}&cursor={}", urlencode(&filter), urlencode(&cursor))
                    };
                    view! { <a href=href class="inline-block text-sm font-medium text-indigo-700 hover:underline">"Older summaries →"</a> }
                })}
            </section>
        </div>
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}
