//! `/o/:slug`: an organization's home.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    components::{link_checker::LinkChecker, load_error::LoadError},
    server_fns::orgs::get_org,
};

pub fn slug_param() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("slug").unwrap_or_default()
}

#[component]
pub fn OrgHome() -> impl IntoView {
    let slug = slug_param();
    let org = Resource::new(slug, get_org);
    let query = use_query_map();
    let link = move || query.with_untracked(|q| q.get("link").unwrap_or_default());
    view! {
        <Suspense fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match org.await {
                    Ok(page) => view! {
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
                                <a href=format!("/o/{}/settings", page.org.slug) class="rounded-lg border border-slate-300 bg-white px-4 py-2 text-sm font-semibold hover:bg-slate-50">
                                    "Members & settings"
                                </a>
                            </header>
                            <section class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
                                <h2 class="text-lg font-semibold">"Summarize a video"</h2>
                                <p class="mt-1 text-sm text-slate-600">"Paste a YouTube link. Summaries are shared with everyone in this organization."</p>
                                <div class="mt-4"><LinkChecker initial=link() action=format!("/o/{}", page.org.slug) /></div>
                            </section>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}
