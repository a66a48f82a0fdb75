//! `/o/:slug`: the org dashboard: the link box, the stat cards, the usage
//! charts, usage per member and recent summaries. Each part's resource
//! reads the org's live ticks, so an event refetches exactly that part.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    components::{
        data_table::DataTable,
        form::{ErrorBanner, FormErrors, SubmitButton},
        live::use_org_live,
        load_error::{LoadError, urlencode},
        quota_meter::QuotaMeter,
        usage_chart::{DailyChart, PeriodChart},
    },
    domain::{Dashboard, MemberUsage, OrgPage, UsageOverview, format_dollars},
    error::AppError,
    server_fns::{
        orgs::get_org,
        summaries::{Summarize, get_dashboard},
        usage::get_usage_overview,
    },
};

pub fn slug_param() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("slug").unwrap_or_default()
}

#[component]
pub fn OrgHome() -> impl IntoView {
    let slug = slug_param();
    let query = use_query_map();
    let filter = move || query.read().get("q");
    let cursor = move || query.read().get("cursor");
    let summarize = ServerAction::<Summarize>::new();
    let live = use_org_live();
    let data = Resource::new(
        move || (slug(), filter(), cursor(), live.history.get()),
        |(slug, filter, cursor, _)| async move {
            // Side by side: during an outage each waits for the pool, and
            // the page's 503 must not take twice that.
            futures_util::future::join(get_org(slug.clone()), get_dashboard(slug, filter, cursor))
                .await
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    (Ok(page), Ok(dashboard)) => view! { <DashboardBody page dashboard summarize filter=filter().unwrap_or_default() slug /> }.into_any(),
                    (Err(error), _) | (_, Err(error)) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DashboardBody(
    page: OrgPage,
    dashboard: Dashboard,
    summarize: ServerAction<Summarize>,
    filter: String,
    slug: impl Fn() -> String + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let live = use_org_live();
    let usage = Resource::new(
        move || (slug(), live.usage.get()),
        |(slug, _)| get_usage_overview(slug),
    );
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
            </section>

            <Transition fallback=|| view! { <p class="text-slate-500">"Loading usage…"</p> }>
                {move || Suspend::new(async move {
                    match usage.await {
                        Ok(usage) => view! { <UsageSections usage /> }.into_any(),
                        // The history below has its own load; one
                        // failed part must not take the page with it.
                        Err(_) => view! {
                            <p class="rounded-2xl border border-dashed border-slate-300 p-6 text-sm text-slate-600" data-testid="usage-error">
                                "Usage numbers could not be loaded just now. Reload the page to try again."
                            </p>
                        }.into_any(),
                    }
                })}
            </Transition>

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
                                    // On a phone the title takes its own line(s) and who/when
                                    // go below it; side by side from `sm` up.
                                    <a href=format!("/o/{slug}/v/{}", item.video_id) class="flex flex-col gap-1 px-4 py-3 hover:bg-slate-50 sm:flex-row sm:items-center sm:justify-between sm:gap-4">
                                        <span class="min-w-0 break-words font-medium text-slate-900 sm:truncate">{item.title.clone().unwrap_or_else(|| item.video_id.clone())}</span>
                                        <span class="flex min-w-0 flex-wrap items-center gap-x-2 gap-y-1 text-sm text-slate-500 sm:shrink-0 sm:flex-nowrap">
                                            {item.from_cache.then(|| view! { <span class="rounded bg-emerald-50 px-1.5 py-0.5 text-xs text-emerald-800">"from cache"</span> })}
                                            {item.requested_by.clone().map(|who| view! { <span class="max-w-full truncate sm:max-w-[14rem]" data-testid="requested-by">{who}</span> })}
                                            <span class="whitespace-nowrap">{item.requested_on.clone()}</span>
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

const CARD: &str = "rounded-2xl border border-slate-200 bg-white p-5 shadow-sm";

/// The stat cards, the charts and the per-member table.
#[component]
fn UsageSections(usage: UsageOverview) -> impl IntoView {
    let period = usage.period.clone();
    let hit_rate = period
        .cache_hit_percent()
        .map(|p| format!("{p}%"))
        .unwrap_or_else(|| "—".into());
    let summaries = period.summaries();
    let period_start = usage.now.period_start.chars().take(10).collect::<String>();
    view! {
        <section class="space-y-4" aria-labelledby="usage-heading">
            <h2 id="usage-heading" class="text-lg font-semibold">"This period"</h2>
            <div class="grid gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="stat-cards">
                <div class=format!("{CARD} sm:col-span-2 lg:col-span-3")>
                    <QuotaMeter quota=usage.quota.clone() />
                </div>
                <StatCard testid="card-remaining" label="Remaining" value=usage.now.remaining.to_string()
                    note=format!("of {} this period", usage.now.limit) />
                <StatCard testid="card-plan" label="Plan" value=usage.now.plan_name.clone()
                    note=format!("Quota resets {}", usage.quota.resets_on) />
                <StatCard testid="card-spend" label="AI spend this period" value=format_dollars(period.cost_micros)
                    note=format!("{} made fresh", plural(period.fresh, "summary", "summaries")) />
                <StatCard testid="card-saved" label="Saved by the shared cache" value=format_dollars(period.saved_micros)
                    note=format!("{} served from the cache", plural(period.cached, "summary", "summaries")) />
                <StatCard testid="card-hit-rate" label="Cache hit rate" value=hit_rate
                    note=if summaries == 0 { "No summaries yet this period".to_owned() } else { format!("of {}", plural(summaries, "summary", "summaries")) } />
            </div>
            <div class="grid gap-4 lg:grid-cols-2">
                <div class=CARD>
                    <DailyChart days=usage.daily.days.clone() period_start />
                </div>
                <div class=CARD>
                    <PeriodChart days=usage.cumulative.clone() period_days=usage.period_days limit=usage.now.limit />
                </div>
            </div>
            <MemberTable members=usage.members.clone() />
        </section>
    }
    .into_any()
}

#[component]
fn StatCard(
    testid: &'static str,
    label: &'static str,
    value: String,
    note: String,
) -> impl IntoView {
    view! {
        <div class=CARD data-testid=testid>
            <p class="text-sm text-slate-600">{label}</p>
            <p class="mt-1 text-2xl font-bold tracking-tight text-slate-900" data-testid=format!("{testid}-value")>{value}</p>
            <p class="mt-1 text-xs text-slate-500">{note}</p>
        </div>
    }
    .into_any()
}

/// Admins see every member's line; members only their own.
#[component]
fn MemberTable(members: MemberUsage) -> impl IntoView {
    let heading = if members.everyone {
        "Usage by member"
    } else {
        "Your usage"
    };
    let rows = members
        .members
        .iter()
        .map(|line| {
            let who = line.email.clone().unwrap_or_else(|| "Member without an email".into());
            // A narrow column breaks an address before its `@` rather than
            // anywhere in it.
            let (local, domain) = match who.split_once('@') {
                Some((local, domain)) => (local.to_owned(), Some(format!("@{domain}"))),
                None => (who, None),
            };
            view! {
                <tr>
                    <th scope="row" class="px-3 py-2 sm:px-4 text-left font-medium text-slate-900">
                        <span class="break-words">{local}{domain.map(|domain| view! { <wbr/>{domain} })}</span>
                        {line.is_you.then(|| view! { " " <span class="text-xs font-normal text-slate-500">"(you)"</span> })}
                    </th>
                    <td class="px-3 py-2 sm:px-4 text-slate-600">{line.role.label()}</td>
                    <td class="px-3 py-2 sm:px-4 tabular-nums">{line.fresh}</td>
                    <td class="px-3 py-2 sm:px-4 tabular-nums">{line.cached}</td>
                    <td class="px-3 py-2 sm:px-4 font-semibold tabular-nums">{line.fresh + line.cached}</td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    view! {
        <div class="space-y-2" data-testid="member-usage">
            <h3 class="text-base font-semibold">{heading}</h3>
            <DataTable headers=&["Member", "Role", "Fresh", "From cache", "Total"] empty="Nobody has summarized anything this period." testid="member-usage-table" rows />
        </div>
    }
    .into_any()
}

fn plural(n: i32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}
