//! "Copy" for a value that is also shown on the page (a read-only field, a
//! link, a text block). It appears only once the page is hydrated: without
//! JavaScript there is no dead button, and the value itself is selectable.
//!
//! The outcome is announced in a polite live region ("Copied", or how to
//! copy by hand when the browser refuses), so screen readers hear it too.

use leptos::prelude::*;

/// The classes of a secondary action button, shared by the summary page's
/// links that sit beside copy buttons: same size, same visible focus ring.
pub const ACTION_CLASS: &str = "inline-flex items-center justify-center gap-1.5 rounded-lg border border-slate-300 bg-white px-3 py-1.5 text-sm font-semibold text-slate-800 shadow-sm hover:bg-slate-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600";

const EMERALD_CLASS: &str = "rounded-lg border border-emerald-300 bg-white px-3 py-1 text-xs font-semibold text-emerald-900 hover:bg-emerald-100 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-emerald-700";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Idle,
    Copied,
    Refused,
}

/// `text` is read when the button is pressed, so it may change after
/// hydration (e.g. a URL completed with the page's origin).
#[component]
pub fn CopyButton(
    #[prop(into)] text: Signal<String>,
    /// The button's words; "Copy link" unless told.
    #[prop(optional)]
    label: Option<&'static str>,
    /// What the live region says on success; "Copied" unless told.
    #[prop(optional)]
    copied: Option<&'static str>,
    /// Styled like the other actions around it (`ACTION_CLASS`) instead of
    /// the small emerald button of the invitation box.
    #[prop(optional)]
    action: bool,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let label = label.unwrap_or("Copy link");
    let copied = copied.unwrap_or("Copied");
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let outcome = RwSignal::new(Outcome::Idle);
    // A fresh announcement for every press, even when the words repeat.
    let presses = RwSignal::new(0u32);
    let on_click = move |_| {
        presses.update(|n| *n += 1);
        let press = presses.get_untracked();
        outcome.set(Outcome::Idle);
        copy_to_clipboard(&text.get_untracked(), move |ok| {
            if presses.get_untracked() == press {
                outcome.set(if ok {
                    Outcome::Copied
                } else {
                    Outcome::Refused
                });
                // The button reads as itself again after a moment; the
                // announcement has been made by then.
                if ok {
                    set_timeout(
                        move || {
                            if presses.try_get_untracked() == Some(press) {
                                outcome.try_set(Outcome::Idle);
                            }
                        },
                        std::time::Duration::from_secs(4),
                    );
                }
            }
        });
    };
    view! {
        <span class="inline-flex flex-wrap items-center gap-2" hidden=move || !hydrated.get()>
            <button
                type="button"
                on:click=on_click
                class=if action { ACTION_CLASS } else { EMERALD_CLASS }
                data-testid=testid
            >
                {move || match (action, outcome.get()) {
                    (false, Outcome::Copied) => "Copied",
                    (true, Outcome::Copied) => "✓ Copied",
                    _ => label,
                }}
            </button>
            <span role="status" aria-live="polite" class=move || if outcome.get() == Outcome::Refused { "text-xs text-rose-700" } else { "sr-only" }>
                {move || match outcome.get() {
                    Outcome::Idle => "",
                    Outcome::Copied => copied,
                    Outcome::Refused => "Your browser did not allow copying: select the text and copy it by hand.",
                }}
            </span>
        </span>
    }
}

/// Writes `text` to the clipboard and calls `done` with the outcome once
/// the browser has settled it. Browsers offer the clipboard only to secure
/// pages (https or localhost): elsewhere `done(false)` at once.
#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str, done: impl Fn(bool) + 'static) {
    use wasm_bindgen::{JsValue, closure::Closure};
    use web_sys::js_sys::Reflect;

    let Some(window) = web_sys::window() else {
        return done(false);
    };
    let navigator = window.navigator();
    let available = Reflect::get(&navigator, &JsValue::from_str("clipboard"))
        .is_ok_and(|clipboard| !clipboard.is_undefined() && !clipboard.is_null());
    if !available {
        return done(false);
    }
    let promise = navigator.clipboard().write_text(text);
    let done = std::rc::Rc::new(done);
    let on_ok = {
        let done = done.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_| done(true))
    };
    let on_err = Closure::<dyn FnMut(JsValue)>::new(move |_| done(false));
    let _ = promise.then2(&on_ok, &on_err);
    // The browser calls one of them later; two small closures per press.
    on_ok.forget();
    on_err.forget();
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_text: &str, done: impl Fn(bool) + 'static) {
    done(false)
}
