//! How a page shows a failed load: signed-out visitors go to sign-in,
//! missing things are a 404, a database outage a 503 that retries itself,
//! the rest an apology in words.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::{components::Redirect, hooks::use_location};

use crate::error::AppError;

#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(error.http_status());
            if let Some(seconds) = error.retry_after() {
                response.insert_header(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(seconds),
                );
            }
        }
    }
    if let AppError::DatabaseUnavailable {
        retry_after_seconds,
    } = &error
    {
        return view! { <DatabaseDown retry_after_seconds=*retry_after_seconds /> }.into_any();
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

/// The database is down or restarting: say so in words, and let the page
/// ask again by itself (a `refresh`, so it works without JavaScript too).
#[component]
fn DatabaseDown(retry_after_seconds: u64) -> impl IntoView {
    // Never faster than every few seconds: a whole audience reloading at
    // once is the last thing a recovering database needs.
    let seconds = retry_after_seconds.max(5);
    let location = use_location();
    let here = location.pathname.get_untracked();
    view! {
        <Title text="Back in a moment" />
        <Meta http_equiv="refresh" content=seconds.to_string() />
        <section class="mx-auto max-w-xl px-4 py-24 text-center sm:px-6" data-testid="database-down">
            <p class="text-sm font-semibold text-indigo-600">"503"</p>
            <h1 class="mt-2 text-3xl font-bold tracking-tight">"Back in a moment"</h1>
            <p class="mt-4 text-slate-600">
                "tldw's database is not answering right now. Nothing was done: no summary was charged and nothing you sent was saved."
            </p>
            <p class="mt-2 text-slate-600">
                {format!("This page retries in {seconds} seconds by itself.")}
            </p>
            <a href=here class="mt-8 inline-block rounded-xl bg-indigo-600 px-5 py-2.5 font-semibold text-white hover:bg-indigo-500">
                "Try again now"
            </a>
        </section>
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
