//! Sign up and sign in (built-in accounts).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    components::form::{ErrorBanner, FormErrors, SubmitButton, TextField},
    domain::password::MIN_PASSWORD_CHARS,
    server_fns::auth::{SignIn, SignUp},
};

fn query(name: &'static str) -> String {
    use_query_map().with_untracked(|q| q.get(name).unwrap_or_default())
}

#[component]
pub(crate) fn AuthCard(
    title: &'static str,
    subtitle: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <Title text=title />
        <section class="mx-auto flex max-w-md flex-col px-4 py-12 sm:py-20">
            <div class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm sm:p-8">
                <h1 class="text-2xl font-bold tracking-tight text-slate-900">{title}</h1>
                <p class="mt-1 text-sm text-slate-600">{subtitle}</p>
                <div class="mt-6">{children()}</div>
            </div>
        </section>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let errors = FormErrors::of(action);
    let next = query("next");
    let sign_in_link = if next.is_empty() {
        "/sign-in".to_owned()
    } else {
        format!(
            "/sign-in?next={}",
            crate::components::load_error::urlencode(&next)
        )
    };
    let hint =
        format!("At least {MIN_PASSWORD_CHARS} characters; a few unrelated words work well.");
    view! {
        <AuthCard title="Create your account" subtitle="You'll get a personal organization with 10 free summaries a month.">
            <ActionForm action attr:class="space-y-4">
                <ErrorBanner error=errors.general() />
                <input type="hidden" name="next" value=next />
                <TextField label="Email" name="email" kind="email" autocomplete="email" value=query("email") error=errors.field("email") />
                <TextField label="Password" name="password" kind="password" autocomplete="new-password" hint error=errors.field("password") />
                <SubmitButton label="Create account" pending=action.pending() />
            </ActionForm>
            <p class="mt-6 text-sm text-slate-600">
                "Already have an account? " <a href=sign_in_link class="font-medium text-indigo-700 hover:underline">"Sign in"</a>
            </p>
        </AuthCard>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let errors = FormErrors::of(action);
    let next = query("next");
    let everywhere = query("signed_out") == "everywhere";
    let deleted = query("account") == "deleted";
    let sign_up_link = if next.is_empty() {
        "/sign-up".to_owned()
    } else {
        format!(
            "/sign-up?next={}",
            crate::components::load_error::urlencode(&next)
        )
    };
    view! {
        <AuthCard title="Sign in" subtitle="Welcome back to tldw.">
            {everywhere.then(|| view! {
                <p role="status" class="mb-4 rounded-lg bg-emerald-50 px-4 py-3 text-sm text-emerald-800">
                    "You were signed out on every device."
                </p>
            })}
            {deleted.then(|| view! {
                <p role="status" class="mb-4 rounded-lg bg-emerald-50 px-4 py-3 text-sm text-emerald-800">
                    "Your account was deleted. Thank you for using tldw."
                </p>
            })}
            <ActionForm action attr:class="space-y-4">
                <ErrorBanner error=errors.general() />
                <input type="hidden" name="next" value=next />
                <TextField label="Email" name="email" kind="email" autocomplete="email" error=errors.field("email") />
                <TextField label="Password" name="password" kind="password" autocomplete="current-password" error=errors.field("password") />
                <SubmitButton label="Sign in" pending=action.pending() />
            </ActionForm>
            <p class="mt-4 text-sm">
                <a href="/forgot-password" class="font-medium text-indigo-700 hover:underline">"Forgot password?"</a>
            </p>
            <p class="mt-6 text-sm text-slate-600">
                "New to tldw? " <a href=sign_up_link class="font-medium text-indigo-700 hover:underline">"Create an account"</a>
            </p>
        </AuthCard>
    }
}
