use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::form::{ErrorBanner, FormErrors, SubmitButton, TextField},
    server_fns::orgs::CreateOrg,
};

#[component]
pub fn NewOrgPage() -> impl IntoView {
    let action = ServerAction::<CreateOrg>::new();
    let errors = FormErrors::of(action);
    view! {
        <Title text="New organization" />
        <section class="mx-auto max-w-md px-4 py-12">
            <div class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
                <h1 class="text-2xl font-bold tracking-tight">"Create an organization"</h1>
                <p class="mt-1 text-sm text-slate-600">"Invite your team and share one summary quota."</p>
                <ActionForm action attr:class="mt-6 space-y-4">
                    <ErrorBanner error=errors.general() />
                    <TextField label="Organization name" name="name" autocomplete="organization" error=errors.field("name") />
                    <SubmitButton label="Create organization" pending=action.pending() />
                </ActionForm>
            </div>
        </section>
    }
}
