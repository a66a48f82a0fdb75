//! `/o/:slug/billing`: the plan, its period and usage, plan changes, the
//! billing portal, payments and (for admins) the webhook events; and
//! `/o/:slug/billing/return`, where Dodo sends the buyer back.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::org_home::slug_param;
use crate::{
    components::{
        data_table::DataTable,
        form::{ErrorBanner, FormErrors},
        live::use_org_live,
        load_error::LoadError,
        quota_meter::QuotaMeter,
    },
    domain::{BillingOverview, CheckoutProgress, Plan, PlanId},
    server_fns::billing::{
        ChangePlan, OpenPortal, StartCheckout, get_billing, get_checkout_progress,
    },
};

/// Sends the browser to an external page (Dodo's checkout or portal) once a
/// server function has answered with its URL.
fn follow_link<S>(action: ServerAction<S>)
where
    S: leptos::server_fn::ServerFn<Output = String> + Clone + Send + Sync + 'static,
    S::Error: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if let Some(Ok(url)) = action.value().get() {
            let _ = window().location().assign(&url);
        }
    });
}

#[derive(Clone, Copy)]
struct Actions {
    checkout: ServerAction<StartCheckout>,
    change: ServerAction<ChangePlan>,
    portal: ServerAction<OpenPortal>,
}

#[component]
pub fn BillingPage() -> impl IntoView {
    let slug = slug_param();
    let actions = Actions {
        checkout: ServerAction::new(),
        change: ServerAction::new(),
        portal: ServerAction::new(),
    };
    follow_link(actions.checkout);
    follow_link(actions.portal);
    // The plan, the meter and the events move with the org's live ticks.
    let live = use_org_live();
    let data = Resource::new(
        move || {
            (
                slug(),
                actions.change.version().get(),
                live.billing.get(),
                live.usage.get(),
            )
        },
        |(slug, ..)| get_billing(slug),
    );
    view! {
        <Title text="Billing" />
        <Transition fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(overview) => view! { <BillingBody slug=slug() overview actions /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn BillingBody(slug: String, overview: BillingOverview, actions: Actions) -> impl IntoView {
    let current = overview
        .plans
        .iter()
        .find(|p| p.id == overview.current)
        .cloned();
    let current_name = current.map(|p| p.name).unwrap_or_else(|| "Free".into());
    let subscription = overview.subscription.clone();
    let warning = subscription.as_ref().and_then(|s| s.warning.clone());
    let status = subscription.as_ref().map(|s| {
        if s.manual {
            "Set by an administrator".to_owned()
        } else {
            status_words(&s.status, s.cancel_at_period_end)
        }
    });
    let period_end = subscription.as_ref().and_then(|s| s.period_end.clone());
    let has_portal = subscription.as_ref().is_some_and(|s| s.has_portal);
    let errors = [
        FormErrors::of(actions.checkout).general(),
        FormErrors::of(actions.change).general(),
        FormErrors::of(actions.portal).general(),
    ];
    let error = Signal::derive(move || errors.iter().find_map(|e| e.get()));
    let changed = Signal::derive(move || matches!(actions.change.value().get(), Some(Ok(()))));
    let back = format!("/o/{slug}");
    let plans = overview.plans.clone();
    view! {
        <div class="mx-auto max-w-5xl space-y-8 px-4 py-10 sm:px-6">
            <header class="flex flex-wrap items-end justify-between gap-4">
                <div>
                    <a href=back class="text-sm text-indigo-700 hover:underline">"← Dashboard"</a>
                    <h1 class="mt-1 text-3xl font-bold tracking-tight">"Billing"</h1>
                </div>
                {(overview.can_manage && has_portal && overview.billing_enabled).then(|| {
                    let slug = slug.clone();
                    view! {
                        <ActionForm action=actions.portal>
                            <input type="hidden" name="slug" value=slug />
                            <button type="submit" class="rounded-lg border border-slate-300 bg-white px-4 py-2 text-sm font-semibold hover:bg-slate-50"
                                disabled=move || actions.portal.pending().get()>
                                {move || if actions.portal.pending().get() { "Opening…" } else { "Manage billing" }}
                            </button>
                        </ActionForm>
                    }
                })}
            </header>

            <ErrorBanner error />
            {move || changed.get().then(|| view! {
                <p role="status" class="rounded-xl border border-indigo-200 bg-indigo-50 p-4 text-sm text-indigo-900">
                    "Plan change requested. It takes effect as soon as Dodo Payments confirms it; reload in a moment."
                </p>
            })}
            {warning.map(|warning| view! {
                <p role="alert" data-testid="billing-warning" class="rounded-xl border border-amber-300 bg-amber-50 p-4 text-sm text-amber-900">{warning}</p>
            })}
            {(!overview.billing_enabled).then(|| view! {
                <p data-testid="billing-off" class="rounded-xl border border-slate-200 bg-slate-50 p-4 text-sm text-slate-700">
                    "Billing is off on this server, so plans can't be bought here. An administrator can set your organization's plan with "
                    <code class="rounded bg-white px-1">"tldw plan set --org " {slug.clone()} " --plan pro"</code> "."
                </p>
            })}

            <section class="grid gap-6 rounded-2xl border border-slate-200 bg-white p-6 shadow-sm md:grid-cols-2" aria-labelledby="current-plan">
                <div>
                    <h2 id="current-plan" class="text-sm font-medium text-slate-500">"Current plan"</h2>
                    <p class="mt-1 text-2xl font-bold" data-testid="current-plan">{current_name}</p>
                    {status.map(|status| view! { <p class="mt-1 text-sm text-slate-600" data-testid="subscription-status">{status}</p> })}
                    {period_end.map(|end| view! { <p class="text-sm text-slate-600">"Current period ends " {end}</p> })}
                </div>
                <QuotaMeter quota=overview.quota.clone() />
            </section>

            <section class="space-y-4" aria-labelledby="plans-heading">
                <h2 id="plans-heading" class="text-lg font-semibold">"Plans"</h2>
                <ul role="list" class="grid gap-6 md:grid-cols-3">
                    {plans.into_iter().map(|plan| view! {
                        <PlanOption plan slug=slug.clone() overview=overview.clone() actions />
                    }).collect_view()}
                </ul>
            </section>

            <PaymentHistory overview=overview.clone() />
            {overview.can_manage.then(|| view! { <EventLog overview=overview.clone() /> })}
        </div>
    }
}

fn status_words(status: &str, cancel_at_period_end: bool) -> String {
    match (status, cancel_at_period_end) {
        (_, true) => "Cancelled: ends at the end of the period".into(),
        ("active", _) => "Active".into(),
        ("on_hold", _) => "On hold: the last payment failed".into(),
        ("cancelled", _) => "Cancelled".into(),
        ("expired", _) => "Expired".into(),
        ("failed", _) => "Payment failed".into(),
        ("pending", _) => "Waiting for payment".into(),
        (other, _) => other.replace('_', " "),
    }
}

#[component]
fn PlanOption(
    plan: Plan,
    slug: String,
    overview: BillingOverview,
    actions: Actions,
) -> impl IntoView {
    let is_current = plan.id == overview.current;
    let live = overview.subscription.as_ref().is_some_and(|s| s.live);
    let cancelling = !live
        && overview
            .subscription
            .as_ref()
            .is_some_and(|s| s.paid_period_running);
    let rank = |id: PlanId| PlanId::ALL.iter().position(|p| *p == id).unwrap_or(0);
    let verb = if rank(plan.id) > rank(overview.current) {
        "Upgrade to "
    } else {
        "Switch to "
    };
    let label = format!("{verb}{}", plan.name);
    let card = if is_current {
        "flex flex-col rounded-2xl border-2 border-indigo-600 bg-white p-6 shadow-sm"
    } else {
        "flex flex-col rounded-2xl border border-slate-200 bg-white p-6 shadow-sm"
    };
    let button = "mt-6 w-full rounded-xl bg-indigo-600 px-4 py-2.5 text-center font-semibold text-white hover:bg-indigo-500 disabled:cursor-not-allowed disabled:bg-slate-300";
    let note =
        |text: &'static str| view! { <p class="mt-6 text-sm text-slate-600">{text}</p> }.into_any();
    let action = if is_current {
        view! { <p class="mt-6 rounded-xl bg-indigo-50 px-4 py-2.5 text-center text-sm font-semibold text-indigo-800">"Your current plan"</p> }.into_any()
    } else if !overview.can_manage {
        note("Ask an owner or admin of this organization to change the plan.")
    } else if !overview.billing_enabled {
        view! {
            <button type="button" disabled=true class=button aria-describedby=format!("billing-off-{}", plan.id.as_str())>{label}</button>
            <p id=format!("billing-off-{}", plan.id.as_str()) class="mt-2 text-xs text-slate-500">"Billing is off on this server."</p>
        }.into_any()
    } else if plan.id == PlanId::Free {
        if live {
            note(
                "To move to Free, cancel in the billing portal (Manage billing). Your plan stays until the period ends.",
            )
        } else {
            note("Your organization returns to Free when a subscription ends.")
        }
    } else if cancelling {
        note("Your subscription is cancelling. To keep it or switch plans, open Manage billing.")
    } else if live {
        let id = plan.id.as_str();
        view! {
            <ActionForm action=actions.change>
                <input type="hidden" name="slug" value=slug.clone() />
                <input type="hidden" name="plan" value=id />
                <button type="submit" class=button disabled=move || actions.change.pending().get()>{label}</button>
            </ActionForm>
        }.into_any()
    } else {
        let id = plan.id.as_str();
        view! {
            <ActionForm action=actions.checkout>
                <input type="hidden" name="slug" value=slug.clone() />
                <input type="hidden" name="plan" value=id />
                <button type="submit" class=button disabled=move || actions.checkout.pending().get()>
                    {move || if actions.checkout.pending().get() { "Opening checkout…".to_owned() } else { label.clone() }}
                </button>
            </ActionForm>
        }.into_any()
    };
    view! {
        <li class=card data-plan=plan.id.as_str()>
            <h3 class="text-lg font-semibold text-slate-900">{plan.name.clone()}</h3>
            <p class="mt-1 text-sm text-slate-500">{plan.tagline.clone()}</p>
            <p class="mt-4 flex items-baseline gap-1">
                <span class="text-3xl font-bold tracking-tight text-slate-900">{plan.display_price()}</span>
                <span class="text-sm text-slate-500">"/ month"</span>
            </p>
            <ul role="list" class="mt-4 flex-1 space-y-1 text-sm text-slate-700">
                {plan.features.iter().map(|f| view! { <li>"✓ " {f.clone()}</li> }).collect_view()}
            </ul>
            {action}
        </li>
    }
}

#[component]
fn PaymentHistory(overview: BillingOverview) -> impl IntoView {
    let rows = overview
        .payments
        .into_iter()
        .map(|p| {
            view! {
                <tr>
                    <td class="px-4 py-2">{p.date}</td>
                    <td class="px-4 py-2">{p.amount}</td>
                    <td class="px-4 py-2">{p.status}{p.error.map(|e| view! { <span class="block text-xs text-rose-700">{e}</span> })}</td>
                    <td class="px-4 py-2 font-mono text-xs text-slate-500">{p.payment_id}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="space-y-3" aria-labelledby="payments-heading">
            <h2 id="payments-heading" class="text-lg font-semibold">"Payment history"</h2>
            <DataTable headers=&["Date", "Amount", "Status", "Payment"] empty="No payments yet." testid="payments" rows />
        </section>
    }
}

#[component]
fn EventLog(overview: BillingOverview) -> impl IntoView {
    let rows = overview
        .events
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td class="px-4 py-2 whitespace-nowrap">{e.received}</td>
                    <td class="px-4 py-2 font-mono text-xs">{e.event_type}</td>
                    <td class="px-4 py-2">{e.outcome}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="space-y-3" aria-labelledby="events-heading">
            <h2 id="events-heading" class="text-lg font-semibold">"Webhook events"</h2>
            <p class="text-sm text-slate-600">"What Dodo Payments told us about this organization, newest first."</p>
            <DataTable headers=&["Received", "Event", "Outcome"] empty="No events yet." testid="webhook-events" rows />
        </section>
    }
}

/// How long the return page waits for the webhook before saying so.
const CONFIRM_POLLS: u32 = 40;
const CONFIRM_POLL_MS: u64 = 1500;

/// Where Dodo sends the buyer back. Its query string (`status=active` …) is
/// not trusted: the page only shows what the webhook wrote.
#[component]
pub fn CheckoutReturnPage() -> impl IntoView {
    let slug = slug_param();
    let query = use_query_map();
    let checkout = move || query.read().get("checkout").unwrap_or_default();
    let (polls, set_polls) = signal(0u32);
    // A live billing event (the webhook landing) answers at once; the
    // polling below is the fallback.
    let live = use_org_live();
    let progress = Resource::new(
        move || (slug(), checkout(), polls.get(), live.billing.get()),
        |(slug, checkout, ..)| get_checkout_progress(slug, checkout),
    );
    // Poll in the browser until the webhook lands or the wait runs out.
    Effect::new(move |_| {
        if let Some(Ok(CheckoutProgress::Waiting)) = progress.get()
            && polls.get_untracked() < CONFIRM_POLLS
        {
            set_timeout(
                move || set_polls.update(|n| *n += 1),
                std::time::Duration::from_millis(CONFIRM_POLL_MS),
            );
        }
    });
    let billing = move || format!("/o/{}/billing", slug());
    view! {
        <Title text="Confirming your payment" />
        <div class="mx-auto max-w-xl px-4 py-16 sm:px-6">
            <section class="rounded-2xl border border-slate-200 bg-white p-8 text-center shadow-sm" aria-live="polite">
                <Suspense fallback=|| view! { <Waiting /> }>
                    {move || Suspend::new(async move {
                        match progress.await {
                            Ok(CheckoutProgress::Confirmed { plan }) => view! {
                                <div data-testid="checkout-confirmed">
                                    <p class="text-4xl" aria-hidden="true">"🎉"</p>
                                    <h1 class="mt-2 text-2xl font-bold">"Payment confirmed"</h1>
                                    <p class="mt-2 text-slate-600">"Your organization is now on the " <strong>{plan.label()}</strong> " plan. The new limit applies right away."</p>
                                    <a href=format!("/o/{}", slug()) class="mt-6 inline-block rounded-xl bg-indigo-600 px-5 py-2.5 font-semibold text-white hover:bg-indigo-500">"Back to summarizing"</a>
                                </div>
                            }.into_any(),
                            Ok(CheckoutProgress::Waiting) if polls.get_untracked() >= CONFIRM_POLLS => view! {
                                <div data-testid="checkout-slow">
                                    <h1 class="text-2xl font-bold">"Still waiting for confirmation"</h1>
                                    <p class="mt-2 text-slate-600">"Dodo Payments hasn't confirmed this payment yet. That can take a few minutes; you won't be charged twice. The billing page will show the new plan as soon as it arrives."</p>
                                    <a href=billing() class="mt-6 inline-block rounded-xl border border-slate-300 px-5 py-2.5 font-semibold hover:bg-slate-50">"Go to billing"</a>
                                </div>
                            }.into_any(),
                            Ok(CheckoutProgress::Waiting) => view! { <Waiting /> <a href="" class="mt-4 inline-block text-sm text-indigo-700 hover:underline">"Check again"</a> }.into_any(),
                            Err(error) => view! { <LoadError error /> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </div>
    }
}

#[component]
fn Waiting() -> impl IntoView {
    view! {
        <div data-testid="checkout-waiting">
            <div class="mx-auto h-10 w-10 animate-spin rounded-full border-4 border-indigo-200 border-t-indigo-600" aria-hidden="true"></div>
            <h1 class="mt-4 text-2xl font-bold">"Confirming your payment…"</h1>
            <p class="mt-2 text-slate-600">"We're waiting for Dodo Payments to confirm it. This usually takes a few seconds."</p>
        </div>
    }
}
