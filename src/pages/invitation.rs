//! `/invite/:token`: accept an invitation.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    components::{
        form::{ErrorBanner, FormErrors, SubmitButton},
        load_error::{LoadError, urlencode},
    },
    server_fns::{
        auth::whoami,
        invitations::{AcceptInvitation, get_invitation},
    },
};

#[component]
pub fn InvitationPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let data = Resource::new(token, |token| async move {
        (get_invitation(token).await, whoami().await)
    });
    let accept = ServerAction::<AcceptInvitation>::new();
    let errors = FormErrors::of(accept);
    view! {
        <Title text="Invitation" />
        <section class="mx-auto max-w-md px-4 py-12 sm:py-20">
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let (invitation, viewer) = data.await;
                    let invitation = match invitation {
                        Ok(invitation) => invitation,
                        Err(error) => return view! { <LoadError error /> }.into_any(),
                    };
                    let here = format!("/invite/{}", token());
                    let signed_in_as = viewer.ok().flatten().and_then(|v| v.email);
                    view! {
                        <div class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm sm:p-8">
                            <h1 class="text-2xl font-bold tracking-tight">"Join " {invitation.org_name.clone()}</h1>
                            <p class="mt-2 text-slate-600">
                                "This invitation is for " <strong>{invitation.email.clone()}</strong> " as " {invitation.role.label().to_lowercase()} "."
                            </p>
                            <div class="mt-6 space-y-4">
                                <ErrorBanner error=errors.general() />
                                {match signed_in_as {
                                    Some(email) => view! {
                                        <p class="text-sm text-slate-500">"Signed in as " {email}</p>
                                        <ActionForm action=accept>
                                            <input type="hidden" name="token" value=token() />
                                            <SubmitButton label="Accept invitation" pending=accept.pending() />
                                        </ActionForm>
                                    }.into_any(),
                                    None => view! {
                                        <div class="flex flex-wrap gap-3">
                                            <a href=format!("/sign-up?next={}&email={}", urlencode(&here), urlencode(&invitation.email))
                                                class="rounded-lg bg-indigo-600 px-4 py-2 font-semibold text-white hover:bg-indigo-500">"Create an account"</a>
                                            <a href=format!("/sign-in?next={}", urlencode(&here))
                                                class="rounded-lg border border-slate-300 px-4 py-2 font-semibold hover:bg-slate-50">"Sign in"</a>
                                        </div>
                                    }.into_any(),
                                }}
                            </div>
                        </div>
                    }.into_any()
                })}
            </Suspense>
        </section>
    }
}
