//! "Copy" for a value shown in a read-only field. It appears only once the
//! page is hydrated: without JavaScript the field itself is selectable.

use leptos::prelude::*;

#[component]
pub fn CopyButton(#[prop(into)] text: String) -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let (copied, set_copied) = signal(false);
    view! {
        <button
            type="button"
            hidden=move || !hydrated.get()
            on:click=move |_| set_copied.set(copy_to_clipboard(&text))
            class="rounded-lg border border-emerald-300 bg-white px-3 py-1 text-xs font-semibold text-emerald-900 hover:bg-emerald-100"
        >
            {move || if copied.get() { "Copied" } else { "Copy link" }}
        </button>
    }
}

#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str) -> bool {
    web_sys::window().is_some_and(|window| {
        // The promise settles later; a refusal leaves the field to copy by hand.
        let _ = window.navigator().clipboard().write_text(text);
        true
    })
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_text: &str) -> bool {
    false
}
