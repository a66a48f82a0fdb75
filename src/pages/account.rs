use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{
        form::{Panel, SubmitButton},
        load_error::LoadError,
    },
    error::AppError,
    server_fns::auth::{SignOut, SignOutEverywhere, whoami},
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
