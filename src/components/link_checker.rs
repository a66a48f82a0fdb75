//! The link box. With JavaScript it says at once whether a pasted link is a
//! YouTube video; without it, the form round-trips through the server, which
//! renders the same verdict.

use leptos::prelude::*;

use crate::domain::VideoId;

#[component]
pub fn LinkChecker(
    /// The link from the query string, when the form was submitted.
    #[prop(into)]
    initial: String,
    /// The page the form submits to (it reads `?link=`).
    #[prop(default = "/".into(), into)]
    action: String,
) -> impl IntoView {
    let (link, set_link) = signal(initial);
    // Effects run only in the browser: this flips once the wasm has taken over.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    let verdict = Memo::new(move |_| {
        let link = link.get();
        (!link.trim().is_empty()).then(|| VideoId::parse(&link).map_err(|error| error.to_string()))
    });
    let invalid = move || matches!(verdict.get(), Some(Err(_)));

    view! {
        <form
            method="get"
            action=action
            class="flex w-full flex-col gap-3 sm:flex-row"
            data-hydrated=move || hydrated.get().to_string()
        >
            <label for="link" class="sr-only">
                "YouTube link"
            </label>
            <input
                id="link"
                name="link"
                type="text"
                inputmode="url"
                autocomplete="off"
                spellcheck="false"
                placeholder="Paste a YouTube link, e.g. https://youtu.be/dQw4w9WgXcQ"
                class="min-w-0 flex-1 rounded-xl border border-slate-300 bg-white px-4 py-3 text-base shadow-sm outline-none transition focus:border-indigo-500 focus:ring-4 focus:ring-indigo-100 aria-[invalid=true]:border-rose-400"
                aria-describedby="link-verdict"
                aria-invalid=move || invalid().to_string()
                // The attribute carries the submitted link in server HTML (no
                // JavaScript); the property keeps it in sync once hydrated.
                value=link.get_untracked()
                prop:value=move || link.get()
                on:input=move |ev| set_link.set(event_target_value(&ev))
            />
            <button
                type="submit"
                class="rounded-xl bg-indigo-600 px-6 py-3 text-base font-semibold text-white shadow-sm transition hover:bg-indigo-500 focus:outline-none focus:ring-4 focus:ring-indigo-200"
            >
                "Check link"
            </button>
        </form>
        <p id="link-verdict" role="status" aria-live="polite" class="mt-3 min-h-6 text-sm">
            {move || match verdict.get() {
                None => view! {
                    <span class="text-slate-500">
                        "Watch pages, youtu.be, Shorts, embeds and live links all work."
                    </span>
                }
                    .into_any(),
                Some(Ok(id)) => view! {
                    <span class="font-medium text-emerald-700" data-testid="verdict-ok">
                        "That's YouTube video " <code class="rounded bg-emerald-50 px-1">{id.to_string()}</code>
                        ". tldw can summarize it."
                    </span>
                }
                    .into_any(),
                Some(Err(message)) => view! {
                    <span class="font-medium text-rose-700" data-testid="verdict-error">
                        {message}
                    </span>
                }
                    .into_any(),
            }}
        </p>
    }
}
