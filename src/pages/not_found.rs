use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Page not found" />
        <section class="mx-auto max-w-xl px-4 py-24 text-center sm:px-6">
            <p class="text-sm font-semibold text-indigo-600">"404"</p>
            <h1 class="mt-2 text-3xl font-bold tracking-tight">"We couldn't find that page."</h1>
            <p class="mt-4 text-slate-600">"The link may be old or mistyped."</p>
            <a href="/" class="mt-8 inline-block rounded-xl bg-indigo-600 px-5 py-2.5 font-semibold text-white hover:bg-indigo-500">
                "Back to the start"
            </a>
        </section>
    }
}
