//! The pages emailed links open: `/forgot-password`, `/reset-password`
//! and `/verify-email`. Each link's token is used by a button (a POST),
//! never by opening the page, so mail scanners that follow links use none.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    components::form::{ErrorBanner, FormErrors, SubmitButton, TextField},
    domain::password::MIN_PASSWORD_CHARS,
    pages::auth::AuthCard,
    server_fns::account::{ForgotPassword, ResetPassword, VerifyEmail},
};

fn query(name: &'static str) -> String {
    use_query_map().with_untracked(|q| q.get(name).unwrap_or_default())
}

#[component]
fn MissingToken() -> impl IntoView {
    view! {
        <p role="alert" class="rounded-lg border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900">
            "This page needs the link from your email. Open the link exactly as it arrived, or ask for a new one."
        </p>
    }
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<ForgotPassword>::new();
    let errors = FormErrors::of(action);
    let sent = move || matches!(action.value().get(), Some(Ok(())));
    view! {
        <AuthCard title="Forgot your password?" subtitle="We'll email you a link to choose a new one.">
            <Show
                when=sent
                fallback=move || view! {
                    <ActionForm action attr:class="space-y-4">
                        <ErrorBanner error=errors.general() />
                        <TextField label="Email" name="email" kind="email" autocomplete="email" value=query("email") error=errors.field("email") />
                        <SubmitButton label="Email me a reset link" pending=action.pending() />
                    </ActionForm>
                }
            >
                <div role="status" data-testid="reset-sent" class="space-y-2 rounded-lg bg-emerald-50 px-4 py-3 text-sm text-emerald-900">
                    <p class="font-medium">"Check your inbox."</p>
                    <p>"If an account uses that address, a link to reset its password is on its way. It works once, for one hour. Nothing arrived after a few minutes? Look in your spam folder, or try again."</p>
                </div>
            </Show>
            <p class="mt-6 text-sm text-slate-600">
                "Remembered it? " <a href="/sign-in" class="font-medium text-indigo-700 hover:underline">"Sign in"</a>
            </p>
        </AuthCard>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let action = ServerAction::<ResetPassword>::new();
    let errors = FormErrors::of(action);
    let token = query("token");
    let hint =
        format!("At least {MIN_PASSWORD_CHARS} characters; a few unrelated words work well.");
    view! {
        <AuthCard title="Choose a new password" subtitle="Setting it signs your account out on every other device.">
            {if token.is_empty() {
                view! { <MissingToken /> }.into_any()
            } else {
                view! {
                    <ActionForm action attr:class="space-y-4">
                        <ErrorBanner error=errors.general() />
                        <input type="hidden" name="token" value=token />
                        <TextField label="New password" name="password" kind="password" autocomplete="new-password" hint error=errors.field("password") />
                        <SubmitButton label="Set new password" pending=action.pending() />
                    </ActionForm>
                }.into_any()
            }}
            <p class="mt-6 text-sm text-slate-600">
                "Link expired? " <a href="/forgot-password" class="font-medium text-indigo-700 hover:underline">"Ask for a new one"</a>
            </p>
        </AuthCard>
    }
}

#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let action = ServerAction::<VerifyEmail>::new();
    let errors = FormErrors::of(action);
    let token = query("token");
    let done = move || matches!(action.value().get(), Some(Ok(())));
    view! {
        <AuthCard title="Confirm your email" subtitle="One click proves this address is yours.">
            {if token.is_empty() {
                view! { <MissingToken /> }.into_any()
            } else {
                let token = StoredValue::new(token);
                view! {
                    <Show
                        when=done
                        fallback=move || view! {
                            <ActionForm action attr:class="space-y-4">
                                <ErrorBanner error=errors.general() />
                                <input type="hidden" name="token" value=token.get_value() />
                                <SubmitButton label="Confirm my email" pending=action.pending() />
                            </ActionForm>
                        }
                    >
                        <div role="status" data-testid="email-verified" class="space-y-2 rounded-lg bg-emerald-50 px-4 py-3 text-sm text-emerald-900">
                            <p class="font-medium">"Your email is confirmed."</p>
                            <p>"You can now accept invitations to organizations."</p>
                        </div>
                        <a href="/account" class="mt-4 inline-block font-medium text-indigo-700 hover:underline">"Go to your account"</a>
                    </Show>
                }.into_any()
            }}
        </AuthCard>
    }
}
