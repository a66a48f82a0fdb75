use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    components::{link_checker::LinkChecker, load_error::LoadError, pricing_table::PricingTable},
    domain::Plan,
    server_fns::billing::get_plans,
};

#[component]
pub fn LandingPage() -> impl IntoView {
    let initial_link =
        use_query_map().with_untracked(|query| query.get("link").unwrap_or_default());
    // The configured plans: the same list the billing page and quotas use.
    let plans = Resource::new(|| (), |_| get_plans());

    view! {
        <Title text="" />
        <section id="try" class="bg-gradient-to-b from-white to-slate-50">
            <div class="mx-auto max-w-3xl px-4 pb-16 pt-16 text-center sm:px-6 sm:pt-24">
                <p class="text-sm font-semibold uppercase tracking-widest text-indigo-600">
                    "Too long; didn't watch"
                </p>
                <h1 class="mt-3 text-4xl font-bold tracking-tight text-slate-900 sm:text-5xl">
                    "Get the point of any YouTube video in a minute."
                </h1>
                <p class="mx-auto mt-5 max-w-2xl text-lg text-slate-600">
                    "Paste a link and tldw reads the transcript, writes a TL;DR and lists the key points with timestamps that jump straight to that moment."
                </p>
                <div class="mx-auto mt-8 max-w-2xl text-left">
                    <LinkChecker initial=initial_link />
                </div>
            </div>
        </section>

        <section id="how-it-works" class="mx-auto max-w-6xl px-4 py-16 sm:px-6">
            <h2 class="text-2xl font-bold tracking-tight text-slate-900 sm:text-3xl">"How it works"</h2>
            <ol class="mt-8 grid gap-6 md:grid-cols-3">
                <Step number=1 title="Paste a link">
                    "Any YouTube watch page, youtu.be link, Short, embed or live stream."
                </Step>
                <Step number=2 title="We read the transcript">
                    "tldw fetches the captions and summarizes them with the model your organization chose."
                </Step>
                <Step number=3 title="Your team shares it">
                    "Each video is summarized once and cached, so the next person gets it instantly and nobody pays twice."
                </Step>
            </ol>
        </section>

        <section id="pricing" class="border-t border-slate-200 bg-white">
            <div class="mx-auto max-w-6xl px-4 py-16 sm:px-6">
                <h2 class="text-2xl font-bold tracking-tight text-slate-900 sm:text-3xl">"Pricing"</h2>
                <p class="mt-2 text-slate-600">
                    "Plans belong to your organization. Every member draws on the same monthly quota."
                </p>
                <div class="mt-10">
                    <Suspense fallback=|| view! { <PricingTable plans=Plan::defaults() billing_enabled=true /> }>
                        {move || Suspend::new(async move {
                            match plans.await {
                                Ok((plans, billing_enabled)) => view! { <PricingTable plans billing_enabled /> }.into_any(),
                                Err(error) => view! { <LoadError error /> }.into_any(),
                            }
                        })}
                    </Suspense>
                </div>
            </div>
        </section>
    }
}

#[component]
fn Step(number: u8, title: &'static str, children: Children) -> impl IntoView {
    view! {
        <li class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
            <span class="grid h-8 w-8 place-items-center rounded-full bg-indigo-50 text-sm font-bold text-indigo-700">
                {number}
            </span>
            <h3 class="mt-4 font-semibold text-slate-900">{title}</h3>
            <p class="mt-2 text-sm text-slate-600">{children()}</p>
        </li>
    }
}
