use leptos::prelude::*;

/// A bordered table that scrolls sideways on narrow screens, or a dashed
/// empty state in words when there are no rows.
#[component]
pub fn DataTable(
    /// Column headings.
    headers: &'static [&'static str],
    /// What to say when there is nothing to list.
    empty: &'static str,
    /// `data-testid` of the table (the empty state gets `<testid>-empty`).
    testid: &'static str,
    /// The `<tr>` rows; empty means the empty state.
    rows: Vec<AnyView>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! {
            <p class="rounded-2xl border border-dashed border-slate-300 p-6 text-center text-sm text-slate-500"
                data-testid=format!("{testid}-empty")>{empty}</p>
        }
        .into_any();
    }
    view! {
        <div class="overflow-x-auto rounded-2xl border border-slate-200 bg-white">
            <table class="min-w-full text-sm" data-testid=testid>
                <thead class="bg-slate-50 text-left text-slate-600">
                    <tr>{headers.iter().map(|h| view! { <th scope="col" class="px-3 py-2 sm:px-4">{*h}</th> }).collect_view()}</tr>
                </thead>
                <tbody class="divide-y divide-slate-100">{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
