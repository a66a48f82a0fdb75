//! How a page shows a failed load: signed-out visitors go to sign-in,
//! missing things are a 404, the rest an apology in words.

use leptos::prelude::*;
use leptos_router::{components::Redirect, hooks::use_location};

use crate::error::AppError;

#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(error.http_status());
        }
    }
    if error == AppError::Unauthorized {
        let location = use_location();
        let (path, search) = (
            location.pathname.get_untracked(),
            location.search.get_untracked(),
        );
        let search = search.trim_start_matches('?');
        let next = if search.is_empty() {
            path
        } else {
            format!("{path}?{search}")
        };
        let path = format!("/sign-in?next={}", urlencode(&next));
        return view! { <Redirect path /> }.into_any();
    }
    let title = match &error {
        AppError::NotFound(_) => "Not found",
        AppError::Forbidden | AppError::Refused(_) => "Not allowed",
        _ => "Something went wrong",
    };
    view! {
        <section class="mx-auto max-w-xl px-4 py-20 text-center">
            <h1 class="text-2xl font-bold">{title}</h1>
            <p class="mt-3 text-slate-600">{error.to_string()}</p>
            <a href="/app" class="mt-6 inline-block rounded-lg bg-indigo-600 px-4 py-2 font-semibold text-white hover:bg-indigo-500">
                "Go to your organization"
            </a>
        </section>
    }
    .into_any()
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
