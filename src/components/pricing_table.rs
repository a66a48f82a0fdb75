use leptos::prelude::*;

use crate::domain::{Plan, PlanId};

/// One card per plan, from the single plan list.
#[component]
pub fn PricingTable(plans: Vec<Plan>, billing_enabled: bool) -> impl IntoView {
    view! {
        <ul role="list" class="grid gap-6 md:grid-cols-3">
            {plans.into_iter().map(|plan| view! { <PlanCard plan /> }).collect_view()}
        </ul>
        {(!billing_enabled).then(|| view! {
            <p class="mt-6 text-sm text-slate-600" data-testid="pricing-billing-off">
                "Billing is off on this server: paid plans can't be bought here, and an administrator sets plans instead."
            </p>
        })}
    }
}

#[component]
fn PlanCard(plan: Plan) -> impl IntoView {
    let featured = plan.id == PlanId::Pro;
    let card = if featured {
        "relative flex flex-col rounded-2xl border-2 border-indigo-600 bg-white p-6 shadow-lg"
    } else {
        "relative flex flex-col rounded-2xl border border-slate-200 bg-white p-6 shadow-sm"
    };
    let button = if featured {
        "mt-6 rounded-xl bg-indigo-600 px-4 py-2.5 text-center font-semibold text-white hover:bg-indigo-500"
    } else {
        "mt-6 rounded-xl border border-slate-300 px-4 py-2.5 text-center font-semibold text-slate-800 hover:bg-slate-50"
    };
    let price = plan.display_price();
    let cta = if plan.monthly_price_cents == 0 {
        "Start free"
    } else {
        "Choose "
    };
    let cta = if plan.monthly_price_cents == 0 {
        cta.to_owned()
    } else {
        format!("{cta}{}", plan.name)
    };

    view! {
        <li class=card data-plan=plan.id.as_str()>
            {featured
                .then(|| view! {
                    <p class="absolute -top-3 left-6 rounded-full bg-indigo-600 px-3 py-0.5 text-xs font-semibold text-white">
                        "Most popular"
                    </p>
                })}
            <h3 class="text-lg font-semibold text-slate-900">{plan.name.clone()}</h3>
            <p class="mt-1 text-sm text-slate-500">{plan.tagline.clone()}</p>
            <p class="mt-4 flex items-baseline gap-1">
                <span class="text-4xl font-bold tracking-tight text-slate-900">{price}</span>
                <span class="text-sm text-slate-500">"/ month"</span>
            </p>
            <ul role="list" class="mt-6 flex-1 space-y-2 text-sm text-slate-700">
                {plan
                    .features
                    .into_iter()
                    .map(|feature| view! {
                        <li class="flex gap-2">
                            <span aria-hidden="true" class="text-indigo-600">"✓"</span>
                            {feature}
                        </li>
                    })
                    .collect_view()}
            </ul>
            <a href="/sign-up" class=button>{cta}</a>
        </li>
    }
}
