use leptos::prelude::*;

use crate::domain::QuotaView;

/// Used / limit, with the colour turning amber near the limit and red at it.
#[component]
pub fn QuotaMeter(quota: QuotaView) -> impl IntoView {
    let percent = if quota.limit > 0 {
        (quota.used * 100 / quota.limit).clamp(0, 100)
    } else {
        100
    };
    let (bar, label) = if quota.used >= quota.limit {
        ("bg-rose-500", "text-rose-700")
    } else if percent >= 80 {
        ("bg-amber-500", "text-amber-700")
    } else {
        ("bg-indigo-600", "text-slate-600")
    };
    let days = quota.resets_in_days;
    view! {
        <div data-testid="quota-meter">
            <div class="flex items-baseline justify-between text-sm">
                <span class="font-medium text-slate-900">{quota.used} " / " {quota.limit} " summaries this period"</span>
                <span class=label>{format!("resets in {days} day{} ({})", if days == 1 { "" } else { "s" }, quota.resets_on)}</span>
            </div>
            <div class="mt-2 h-2 w-full overflow-hidden rounded-full bg-slate-100" role="progressbar"
                aria-valuemin="0" aria-valuemax=quota.limit aria-valuenow=quota.used aria-label="Summaries used">
                <div class=format!("h-full rounded-full {bar}") style=format!("width: {percent}%")></div>
            </div>
        </div>
    }
}
