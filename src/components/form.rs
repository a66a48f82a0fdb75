//! Form pieces shared by every page: labelled fields with their error right
//! under them, a banner for errors that belong to no field, a submit button
//! that shows progress. All work without JavaScript.

use leptos::{prelude::*, server_fn::ServerFn};

use crate::error::AppError;

/// The errors of one server action, split by field.
#[derive(Clone, Copy)]
pub struct FormErrors(Memo<Option<AppError>>);

impl FormErrors {
    pub fn of<S>(action: ServerAction<S>) -> FormErrors
    where
        S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
        S::Output: Clone + Send + Sync + 'static,
    {
        FormErrors(Memo::new(move |_| {
            action.value().get().and_then(Result::err)
        }))
    }

    pub fn field(self, name: &'static str) -> Signal<Option<String>> {
        Signal::derive(move || self.0.get().and_then(|e| e.field_message(name)))
    }

    /// Errors that belong to no single field.
    pub fn general(self) -> Signal<Option<String>> {
        Signal::derive(move || {
            self.0
                .get()
                .filter(|e| !matches!(e, AppError::Validation(_)))
                .map(|e| e.to_string())
        })
    }
}

#[component]
pub fn TextField(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional, into)] hint: String,
    #[prop(optional, into)] value: String,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described = if hint.is_empty() {
        error_id.clone()
    } else {
        format!("{hint_id} {error_id}")
    };
    view! {
        <div class="space-y-1">
            <label for=id.clone() class="block text-sm font-medium text-slate-700">{label}</label>
            <input
                id=id
                name=name
                type=kind
                value=value
                autocomplete=autocomplete
                required=true
                aria-describedby=described
                aria-invalid=move || error.get().is_some().to_string()
                class="block w-full rounded-lg border border-slate-300 bg-white px-3 py-2 text-slate-900 shadow-sm outline-none focus:border-indigo-500 focus:ring-4 focus:ring-indigo-100 aria-[invalid=true]:border-rose-400"
            />
            {(!hint.is_empty()).then(move || view! { <p id=hint_id class="text-xs text-slate-500">{hint}</p> })}
            <p id=error_id class="text-sm text-rose-700" role="alert">
                {move || error.get()}
            </p>
        </div>
    }
}

#[component]
pub fn ErrorBanner(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|message| {
            view! {
                <div role="alert" class="rounded-lg border border-rose-200 bg-rose-50 px-4 py-3 text-sm text-rose-800">
                    {message}
                </div>
            }
        })
    }
}

#[component]
pub fn SubmitButton(
    label: &'static str,
    #[prop(into)] pending: Signal<bool>,
    #[prop(optional)] danger: bool,
) -> impl IntoView {
    let class = if danger {
        "inline-flex items-center justify-center rounded-lg bg-rose-600 px-4 py-2 font-semibold text-white shadow-sm hover:bg-rose-500 disabled:opacity-60"
    } else {
        "inline-flex items-center justify-center rounded-lg bg-indigo-600 px-4 py-2 font-semibold text-white shadow-sm hover:bg-indigo-500 disabled:opacity-60"
    };
    view! {
        <button type="submit" class=class disabled=move || pending.get() aria-busy=move || pending.get().to_string()>
            {move || if pending.get() { "Working…" } else { label }}
        </button>
    }
}

/// A card with a heading, used to group settings.
#[component]
pub fn Panel(
    title: &'static str,
    #[prop(optional)] id: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <section id=id class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
            <h2 class="text-lg font-semibold text-slate-900">{title}</h2>
            <div class="mt-4 space-y-4">{children()}</div>
        </section>
    }
}
