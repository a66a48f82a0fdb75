use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::{ErrorBanner, FormErrors, Panel, SubmitButton, TextField},
        load_error::LoadError,
    },
    domain::{AccountStatus, password::MIN_PASSWORD_CHARS},
    error::AppError,
    server_fns::{
        account::{
            ChangeEmail, ChangePassword, DeleteAccount, ResendVerification, get_account_status,
        },
        auth::{SignOut, SignOutEverywhere, whoami},
    },
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| whoami());
    let sign_out = ServerAction::<SignOut>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    view! {
        <Title text="Your account" />
        <div class="mx-auto max-w-3xl space-y-6 px-4 py-10 sm:px-6">
            <h1 class="text-2xl font-bold tracking-tight">"Your account"</h1>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match viewer.await {
                        Ok(Some(viewer)) => view! {
                            <Panel title="Signed in">
                                <p class="text-slate-700">
                                    "Signed in as " <strong>{viewer.email.clone().unwrap_or_else(|| "your Clerk account".into())}</strong>
                                </p>
                            </Panel>
                            <Panel title="Your organizations">
                                <ul class="divide-y divide-slate-100">
                                    {viewer.orgs.iter().map(|org| view! {
                                        <li class="flex items-center justify-between py-2">
                                            <a href=format!("/o/{}", org.slug) class="font-medium text-indigo-700 hover:underline">{org.name.clone()}</a>
                                            <span class="text-sm text-slate-500">{org.role.label()}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                                <a href="/orgs/new" class="inline-block text-sm font-medium text-indigo-700 hover:underline">"+ Create an organization"</a>
                            </Panel>
                            {viewer.builtin.then(|| view! { <LifecyclePanels /> })}
                            {viewer.builtin.then(|| view! {
                                <Panel title="Sessions">
                                    <div class="flex flex-wrap gap-3">
                                        <ActionForm action=sign_out>
                                            <SubmitButton label="Sign out" pending=sign_out.pending() />
                                        </ActionForm>
                                        <ActionForm action=everywhere>
                                            <SubmitButton label="Sign out everywhere" pending=everywhere.pending() danger=true />
                                        </ActionForm>
                                    </div>
                                    <p class="text-sm text-slate-500">"“Everywhere” ends every session of this account, on every device."</p>
                                </Panel>
                            })}
                        }.into_any(),
                        Ok(None) => view! { <LoadError error=AppError::Unauthorized /> }.into_any(),
                        Err(error) => view! { <LoadError error /> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

/// Email, password and deletion, for built-in accounts.
#[component]
fn LifecyclePanels() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_account_status());
    let reset = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("password").as_deref() == Some("reset"));
    view! {
        {reset.then(|| view! {
            <p role="status" class="rounded-lg bg-emerald-50 px-4 py-3 text-sm text-emerald-800">
                "Your new password is set. Every other session of this account was signed out."
            </p>
        })}
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading your account…"</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Ok(status) => view! {
                        <EmailPanel status=status.clone() />
                        <PasswordPanel />
                        <DeletePanel />
                    }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn EmailPanel(status: AccountStatus) -> impl IntoView {
    let resend = ServerAction::<ResendVerification>::new();
    let resend_errors = FormErrors::of(resend);
    let change = ServerAction::<ChangeEmail>::new();
    let change_errors = FormErrors::of(change);
    let email = status.email.clone().unwrap_or_default();
    let resent_to = email.clone();
    let resent = move || {
        resend.value().get().and_then(Result::ok).map(|delivery| {
            view! { <p role="status" class="text-sm text-emerald-800">{delivery.sentence("a new verification link", &resent_to)}</p> }
        })
    };
    let changed = move || {
        change.value().get().and_then(Result::ok).map(|delivery| {
            view! {
                <p role="status" data-testid="email-change-sent" class="text-sm text-emerald-800">
                    {delivery.sentence("a confirmation link", "your new address")}
                    " Your address changes when you open it; until then you keep using the current one."
                </p>
            }
        })
    };
    view! {
        <Panel title="Email" id="email">
            <p class="text-slate-700">
                <strong>{email.clone()}</strong>" "
                {if status.verified {
                    view! { <span data-testid="email-status" class="rounded-full bg-emerald-100 px-2 py-0.5 text-xs font-medium text-emerald-800">"Verified"</span> }.into_any()
                } else {
                    view! { <span data-testid="email-status" class="rounded-full bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-900">"Not verified"</span> }.into_any()
                }}
            </p>
            {(!status.verified).then(|| view! {
                <div class="space-y-2 rounded-lg border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900">
                    <p>"Confirm your address with the link we emailed you. Until then you can use your personal workspace, but not accept invitations to other organizations."</p>
                    <ActionForm action=resend>
                        <ErrorBanner error=resend_errors.general() />
                        <SubmitButton label="Send the link again" pending=resend.pending() />
                    </ActionForm>
                    {resent}
                </div>
            })}
            <details class="rounded-lg border border-slate-200 px-4 py-3">
                <summary class="cursor-pointer font-medium text-slate-800">"Change email"</summary>
                <ActionForm action=change attr:class="mt-4 space-y-4">
                    <ErrorBanner error=change_errors.general() />
                    <TextField label="New email" name="new_email" kind="email" autocomplete="email" error=change_errors.field("new_email") />
                    <TextField label="Current password" name="password" kind="password" autocomplete="current-password" error=change_errors.field("password") />
                    <SubmitButton label="Send confirmation link" pending=change.pending() />
                    <p class="text-xs text-slate-500">"We email a link to the new address and tell the current one."</p>
                </ActionForm>
                {changed}
            </details>
        </Panel>
    }
}

#[component]
fn PasswordPanel() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let errors = FormErrors::of(change);
    let hint =
        format!("At least {MIN_PASSWORD_CHARS} characters; a few unrelated words work well.");
    let done = move || {
        change.value().get().and_then(Result::ok).map(|ended| {
            let others = match ended {
                0 => "No other session was open.".to_owned(),
                1 => "One other session was signed out.".to_owned(),
                n => format!("{n} other sessions were signed out."),
            };
            view! { <p role="status" data-testid="password-changed" class="text-sm text-emerald-800">"Password changed. " {others}</p> }
        })
    };
    view! {
        <Panel title="Password" id="password">
            <ActionForm action=change attr:class="space-y-4">
                <ErrorBanner error=errors.general() />
                <TextField label="Current password" name="current_password" kind="password" autocomplete="current-password" error=errors.field("current_password") />
                <TextField label="New password" name="new_password" kind="password" autocomplete="new-password" hint error=errors.field("new_password") />
                <SubmitButton label="Change password" pending=change.pending() />
            </ActionForm>
            {done}
            <p class="text-sm text-slate-500">"Changing it signs out every other device; this one stays signed in."</p>
        </Panel>
    }
}

#[component]
fn DeletePanel() -> impl IntoView {
    let delete = ServerAction::<DeleteAccount>::new();
    let errors = FormErrors::of(delete);
    view! {
        <Panel title="Delete account" id="delete">
            <p class="text-sm text-slate-700">
                "Deleting your account signs you out everywhere, removes you from every organization, and deletes your personal workspace and any organization where you are the only member. Organizations that others still use keep their history. This can't be undone."
            </p>
            <p class="text-sm text-slate-500">
                "If you are the last owner of an organization with other members, make someone else an owner first (or delete it). Owners can download an organization's history from its settings page."
            </p>
            <ActionForm action=delete attr:class="space-y-4">
                <ErrorBanner error=errors.general() />
                <TextField label="Password to confirm" name="confirm_password" kind="password" autocomplete="current-password" error=errors.field("confirm_password") />
                <SubmitButton label="Delete my account" pending=delete.pending() danger=true />
            </ActionForm>
        </Panel>
    }
}
