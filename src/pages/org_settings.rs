//! `/o/:slug/settings`: name, members and roles, invitations, API keys,
//! leaving.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::org_home::slug_param;
use crate::{
    components::{
        copy_button::CopyButton,
        form::{ErrorBanner, FormErrors, Panel, SubmitButton, TextField},
        load_error::LoadError,
    },
    domain::{
        ApiKeyView, CreatedApiKey, InvitationView, MemberView, OrgPage, OrgRole, Permission,
        SummaryLanguage,
    },
    server_fns::{
        api_keys::{CreateApiKey, RevokeApiKey, list_api_keys},
        invitations::{Invite, RevokeInvitation},
        orgs::{
            ChangeRole, DeleteOrg, LeaveOrg, RemoveMember, RenameOrg, SetSummaryLanguage,
            TransferOwnership, get_org,
        },
    },
};

/// Every action on this page, so the page reloads its data after any of them.
#[derive(Clone, Copy)]
struct Actions {
    rename: ServerAction<RenameOrg>,
    language: ServerAction<SetSummaryLanguage>,
    change_role: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
    transfer: ServerAction<TransferOwnership>,
    invite: ServerAction<Invite>,
    revoke: ServerAction<RevokeInvitation>,
    leave: ServerAction<LeaveOrg>,
    delete: ServerAction<DeleteOrg>,
    create_key: ServerAction<CreateApiKey>,
    revoke_key: ServerAction<RevokeApiKey>,
}

impl Actions {
    fn new() -> Actions {
        Actions {
            rename: ServerAction::new(),
            language: ServerAction::new(),
            change_role: ServerAction::new(),
            remove: ServerAction::new(),
            transfer: ServerAction::new(),
            invite: ServerAction::new(),
            revoke: ServerAction::new(),
            leave: ServerAction::new(),
            delete: ServerAction::new(),
            create_key: ServerAction::new(),
            revoke_key: ServerAction::new(),
        }
    }

    fn versions(self) -> usize {
        self.rename.version().get()
            + self.language.version().get()
            + self.change_role.version().get()
            + self.remove.version().get()
            + self.transfer.version().get()
            + self.invite.version().get()
            + self.revoke.version().get()
    }

    /// What changes the key list: its own actions, and members leaving or
    /// changing role (a removed creator's keys go with them).
    fn key_versions(self) -> usize {
        self.create_key.version().get()
            + self.revoke_key.version().get()
            + self.remove.version().get()
            + self.change_role.version().get()
            + self.transfer.version().get()
    }
}

#[component]
pub fn OrgSettings() -> impl IntoView {
    let slug = slug_param();
    let actions = Actions::new();
    let org = Resource::new(
        move || (slug(), actions.versions()),
        |(slug, _)| get_org(slug),
    );
    view! {
        <Suspense fallback=|| view! { <p class="p-8 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match org.await {
                    Ok(page) => view! { <SettingsBody page actions /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SettingsBody(page: OrgPage, actions: Actions) -> impl IntoView {
    let role = page.org.role;
    let slug = page.org.slug.clone();
    // Read reactively: the redirect that carries a new invitation's token
    // can land after this body has rendered from the refetched page.
    let query = use_query_map();
    let created =
        Memo::new(move |_| query.with(|q| (q.get("invite"), q.get("mail").unwrap_or_default())));
    view! {
        <Title text=format!("Settings · {}", page.org.name) />
        <div class="mx-auto max-w-4xl space-y-6 px-4 py-10 sm:px-6">
            <div>
                <a href=format!("/o/{slug}") class="text-sm text-indigo-700 hover:underline">"← " {page.org.name.clone()}</a>
                <h1 class="mt-1 text-3xl font-bold tracking-tight">"Members & settings"</h1>
            </div>
            {role.allows(Permission::RenameOrg).then(|| view! { <RenameForm slug=slug.clone() name=page.org.name.clone() action=actions.rename /> })}
            {role.allows(Permission::RenameOrg).then(|| view! { <LanguageForm slug=slug.clone() current=page.summary_language action=actions.language /> })}
            <MembersPanel slug=slug.clone() members=page.members.clone() role actions />
            {page.invitations.clone().map(|invitations| view! {
                <InvitationsPanel slug=slug.clone() invitations created site_origin=page.site_origin.clone() actions />
            })}
            {role.allows(Permission::ManageApiKeys).then(|| view! { <ApiKeysPanel slug=slug.clone() role actions /> })}
            {(!page.org.personal).then(|| view! { <LeavePanel slug=slug.clone() action=actions.leave /> })}
            {role.allows(Permission::ExportData).then(|| view! { <ExportPanel slug=slug.clone() /> })}
            {(role.allows(Permission::DeleteOrg) && !page.org.personal).then(|| view! { <DeletePanel slug=slug.clone() action=actions.delete /> })}
        </div>
    }
}

#[component]
fn RenameForm(slug: String, name: String, action: ServerAction<RenameOrg>) -> impl IntoView {
    let errors = FormErrors::of(action);
    view! {
        <Panel title="Name">
            <ActionForm action attr:class="flex flex-col gap-3 sm:flex-row sm:items-start">
                <input type="hidden" name="slug" value=slug />
                <div class="flex-1"><TextField label="Organization name" name="name" value=name error=errors.field("name") /></div>
                <div class="sm:pt-6"><SubmitButton label="Rename" pending=action.pending() /></div>
            </ActionForm>
            <ErrorBanner error=errors.general() />
        </Panel>
    }
}

/// The language the org's summaries are written in.
#[component]
fn LanguageForm(
    slug: String,
    current: Option<SummaryLanguage>,
    action: ServerAction<SetSummaryLanguage>,
) -> impl IntoView {
    let errors = FormErrors::of(action);
    view! {
        <Panel title="Summary language" id="summary-language">
            <p class="text-sm text-slate-600">
                "Summaries are written in each video's own language unless you choose one here. "
                "A video in another language is then summarized again in yours (shared with every organization that chose it); videos already in your history stay as they are."
            </p>
            <ActionForm action attr:class="flex flex-col gap-3 sm:flex-row sm:items-end">
                <input type="hidden" name="slug" value=slug />
                <div class="flex-1 space-y-1">
                    <label for="summary-language-select" class="block text-sm font-medium text-slate-700">"Write summaries in"</label>
                    <select id="summary-language-select" name="language" class="w-full rounded-lg border border-slate-300 bg-white px-3 py-2">
                        <option value="" selected=current.is_none()>"The video's own language"</option>
                        {SummaryLanguage::ALL.iter().map(|&language| view! {
                            <option value=language.code() selected=current == Some(language)>{language.label()}</option>
                        }).collect_view()}
                    </select>
                    <p class="text-sm text-rose-700" role="alert">{move || errors.field("language").get()}</p>
                </div>
                <SubmitButton label="Save language" pending=action.pending() />
            </ActionForm>
            {move || (action.value().get().is_some_and(|r| r.is_ok())).then(|| view! {
                <p role="status" class="text-sm text-emerald-700">"Saved. New summaries follow this choice."</p>
            })}
            <ErrorBanner error=errors.general() />
        </Panel>
    }
}

#[component]
fn MembersPanel(
    slug: String,
    members: Vec<MemberView>,
    role: OrgRole,
    actions: Actions,
) -> impl IntoView {
    let manage = role.allows(Permission::ManageMembers);
    let owner = role == OrgRole::Owner;
    let change_errors = FormErrors::of(actions.change_role);
    let remove_errors = FormErrors::of(actions.remove);
    let transfer_errors = FormErrors::of(actions.transfer);
    view! {
        <Panel title="Members" id="members">
            <ErrorBanner error=change_errors.general() />
            <ErrorBanner error=remove_errors.general() />
            <ErrorBanner error=transfer_errors.general() />
            <ul role="list" class="divide-y divide-slate-100" data-testid="members">
                {members.into_iter().map(|member| {
                    let editable = manage && !member.is_you && (owner || member.role != OrgRole::Owner);
                    let slug = slug.clone();
                    let label = member.email.clone().unwrap_or_default();
                    let actions_view = editable.then(|| view! { <MemberActions slug member=member.clone() owner actions /> });
                    view! {
                        <li class="flex flex-col gap-3 py-3 sm:flex-row sm:items-center sm:justify-between" data-member=label>
                            <div>
                                <p class="font-medium text-slate-900">
                                    {member.email.clone().unwrap_or_else(|| "Clerk user".into())}
                                    {member.is_you.then(|| view! { <span class="ml-2 rounded bg-slate-100 px-1.5 py-0.5 text-xs text-slate-600">"you"</span> })}
                                </p>
                                <p class="text-sm text-slate-500">{member.role.label()} " · joined " {member.joined.clone()}</p>
                            </div>
                            {actions_view}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Panel>
    }
}

#[component]
fn MemberActions(slug: String, member: MemberView, owner: bool, actions: Actions) -> impl IntoView {
    let user_id = member.user_id.to_string();
    let roles: Vec<OrgRole> = if owner {
        OrgRole::ALL.to_vec()
    } else {
        vec![OrgRole::Admin, OrgRole::Member]
    };
    let (slug2, user_id2, slug3, user_id3) =
        (slug.clone(), user_id.clone(), slug.clone(), user_id.clone());
    let select_id = format!("role-{user_id}");
    view! {
        <div class="flex flex-wrap items-center gap-2">
            <ActionForm action=actions.change_role attr:class="flex items-center gap-2">
                <input type="hidden" name="slug" value=slug />
                <input type="hidden" name="user_id" value=user_id />
                <label class="sr-only" for=select_id.clone()>"Role"</label>
                <select id=select_id name="role" class="rounded-lg border border-slate-300 bg-white px-2 py-1.5 text-sm">
                    {roles.into_iter().map(|r| view! {
                        <option value=r.as_str() selected=r == member.role>{r.label()}</option>
                    }).collect_view()}
                </select>
                <button type="submit" class="rounded-lg border border-slate-300 px-3 py-1.5 text-sm font-medium hover:bg-slate-50">"Change role"</button>
            </ActionForm>
            {(owner && member.role != OrgRole::Owner).then(|| view! {
                <ActionForm action=actions.transfer>
                    <input type="hidden" name="slug" value=slug2 />
                    <input type="hidden" name="user_id" value=user_id2 />
                    <button type="submit" class="rounded-lg border border-slate-300 px-3 py-1.5 text-sm font-medium hover:bg-slate-50">"Make owner"</button>
                </ActionForm>
            })}
            <ActionForm action=actions.remove>
                <input type="hidden" name="slug" value=slug3 />
                <input type="hidden" name="user_id" value=user_id3 />
                <button type="submit" class="rounded-lg border border-rose-200 px-3 py-1.5 text-sm font-medium text-rose-700 hover:bg-rose-50">"Remove"</button>
            </ActionForm>
        </div>
    }
}

#[component]
fn InvitationsPanel(
    slug: String,
    invitations: Vec<InvitationView>,
    /// The invitation just created (token, mail outcome), from the URL.
    created: Memo<(Option<String>, String)>,
    site_origin: String,
    actions: Actions,
) -> impl IntoView {
    let errors = FormErrors::of(actions.invite);
    let revoke_errors = FormErrors::of(actions.revoke);
    let list_slug = slug.clone();
    view! {
        <Panel title="Invitations" id="invitations">
            {move || { let (token, mail) = created.get(); token.map(|token| {
                let link = format!("{site_origin}/invite/{token}");
                view! {
                    <div role="status" class="rounded-lg border border-emerald-200 bg-emerald-50 p-4 text-sm text-emerald-900">
                        <p class="font-medium">
                            {match mail.as_str() {
                                "sent" => "Invitation emailed. You can also share this link; it works once and for 7 days.",
                                "failed" => "We couldn't send the email, but the invitation exists: share this link instead. It works once and for 7 days.",
                                _ => "Invitation created. Send this link to the person you invited; it works once and for 7 days.",
                            }}
                        </p>
                        <label for="invite-link" class="sr-only">"Invitation link"</label>
                        <div class="mt-2 flex items-center gap-2">
                            <input id="invite-link" readonly=true value=link.clone() data-testid="invite-link"
                                class="w-full rounded border border-emerald-300 bg-white px-2 py-1 font-mono text-xs" />
                            <CopyButton text=link />
                        </div>
                        <p class="mt-1 text-xs">"We keep only a fingerprint of it, so copy it now."</p>
                    </div>
                }
            })}}
            <ActionForm action=actions.invite attr:class="flex flex-col gap-3 sm:flex-row sm:items-start">
                <input type="hidden" name="slug" value=slug.clone() />
                <div class="flex-1"><TextField label="Email address" name="email" kind="email" error=errors.field("email") /></div>
                <div class="space-y-1">
                    <label for="invite-role" class="block text-sm font-medium text-slate-700">"Role"</label>
                    <select id="invite-role" name="role" class="rounded-lg border border-slate-300 bg-white px-3 py-2">
                        <option value="member" selected=true>"Member"</option>
                        <option value="admin">"Admin"</option>
                    </select>
                    <p class="text-sm text-rose-700" role="alert">{move || errors.field("role").get()}</p>
                </div>
                <div class="sm:pt-6"><SubmitButton label="Invite" pending=actions.invite.pending() /></div>
            </ActionForm>
            <ErrorBanner error=errors.general() />
            <ErrorBanner error=revoke_errors.general() />
            {if invitations.is_empty() {
                view! { <p class="text-sm text-slate-500">"No open invitations."</p> }.into_any()
            } else {
                view! {
                    <ul role="list" class="divide-y divide-slate-100" data-testid="invitations">
                        {invitations.into_iter().map(|invitation| {
                            let slug = list_slug.clone();
                            view! {
                            <li class="flex items-center justify-between gap-3 py-2">
                                <div>
                                    <p class="font-medium">{invitation.email.clone()}</p>
                                    <p class="text-sm text-slate-500">{invitation.role.label()} " · expires " {invitation.expires.clone()}</p>
                                </div>
                                <ActionForm action=actions.revoke>
                                    <input type="hidden" name="slug" value=slug />
                                    <input type="hidden" name="id" value=invitation.id.to_string() />
                                    <button type="submit" class="rounded-lg border border-slate-300 px-3 py-1.5 text-sm font-medium hover:bg-slate-50">"Revoke"</button>
                                </ActionForm>
                            </li>
                        }}).collect_view()}
                    </ul>
                }.into_any()
            }}
        </Panel>
    }
}

/// Owners and admins: keys for programs. The secret is shown once, right
/// after creation, from the action's answer (never from a URL).
#[component]
fn ApiKeysPanel(slug: String, role: OrgRole, actions: Actions) -> impl IntoView {
    let errors = FormErrors::of(actions.create_key);
    let revoke_errors = FormErrors::of(actions.revoke_key);
    let (list_slug, form_slug) = (slug.clone(), slug.clone());
    let keys = Resource::new(
        move || (list_slug.clone(), actions.key_versions()),
        |(slug, _)| list_api_keys(slug),
    );
    // The secret arrives in the answer to a script's call: a plain form
    // post would lose it, so the form waits for the page to hydrate.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let roles: Vec<OrgRole> = [OrgRole::Member, OrgRole::Admin]
        .into_iter()
        .filter(|r| *r <= role)
        .collect();
    let created = move || actions.create_key.value().get().and_then(Result::ok);
    let pending = actions.create_key.pending();
    let name_error = errors.field("name");
    // A key was made: empty the name, so a second press doesn't make a twin.
    let name_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if created().is_some()
            && let Some(input) = name_input.get()
        {
            input.set_value("");
        }
    });
    view! {
        <Panel title="API keys" id="api-keys">
            <p class="text-sm text-slate-600">
                "A key lets a program act in this organization through the tldw API, with the role you choose. Send it as "
                <code class="whitespace-nowrap rounded bg-slate-100 px-1 py-0.5 text-xs text-slate-800">"Authorization: Bearer tldw_…"</code>
                "; the "
                <a href="/api/docs" class=LINK_CLASS>"API reference"</a>
                " lists every call."
            </p>
            {move || created().map(|created| view! { <NewKeySecret created /> })}
            <ActionForm action=actions.create_key attr:class="flex flex-col gap-3 sm:flex-row sm:items-start">
                <input type="hidden" name="slug" value=form_slug />
                // Not TextField: its id comes from the field's name, and the
                // rename form above already has a field called "name".
                <div class="flex-1 space-y-1">
                    <label for="api-key-name" class="block text-sm font-medium text-slate-700">"Key name"</label>
                    <input id="api-key-name" node_ref=name_input name="name" type="text" required=true
                        aria-describedby="api-key-name-hint api-key-name-error"
                        aria-invalid=move || name_error.get().is_some().to_string()
                        class="block w-full rounded-lg border border-slate-300 bg-white px-3 py-2 text-slate-900 shadow-sm outline-none focus:border-indigo-500 focus:ring-4 focus:ring-indigo-100 aria-[invalid=true]:border-rose-400" />
                    <p id="api-key-name-hint" class="text-xs text-slate-500">"Where it is used, e.g. \"Slack bot\"."</p>
                    <p id="api-key-name-error" class="text-sm text-rose-700" role="alert">{move || name_error.get()}</p>
                </div>
                <div class="space-y-1">
                    <label for="api-key-role" class="block text-sm font-medium text-slate-700">"Role"</label>
                    <select id="api-key-role" name="role" aria-describedby="api-key-role-error"
                        class="block h-[42px] w-full rounded-lg border border-slate-300 bg-white px-3 text-slate-900 shadow-sm outline-none focus:border-indigo-500 focus:ring-4 focus:ring-indigo-100 sm:w-36">
                        {roles.into_iter().map(|r| view! {
                            <option value=r.as_str() selected=r == OrgRole::Member>{r.label()}</option>
                        }).collect_view()}
                    </select>
                    <p id="api-key-role-error" class="text-sm text-rose-700" role="alert">{move || errors.field("role").get()}</p>
                </div>
                <div class="sm:pt-6">
                    <button type="submit"
                        class="inline-flex w-full items-center justify-center rounded-lg bg-indigo-600 px-4 py-2 font-semibold text-white shadow-sm hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:opacity-60 sm:w-auto"
                        disabled=move || pending.get() || !hydrated.get()
                        aria-busy=move || pending.get().to_string()>
                        {move || if pending.get() { "Working…" } else { "Create key" }}
                    </button>
                </div>
            </ActionForm>
            <noscript><p class="text-sm text-slate-600">"Creating a key needs JavaScript: its secret is shown once, on this page."</p></noscript>
            <ErrorBanner error=errors.general() />
            <ErrorBanner error=revoke_errors.general() />
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading keys…"</p> }>
                {move || { let slug = slug.clone(); Suspend::new(async move {
                    match keys.await {
                        Ok(list) => view! { <ApiKeyList slug keys=list action=actions.revoke_key /> }.into_any(),
                        Err(error) => view! { <p role="alert" class="text-sm text-rose-700">{error.to_string()}</p> }.into_any(),
                    }
                })}}
            </Transition>
        </Panel>
    }
}

/// Links inside the API keys section's text: visible focus, readable on
/// white and on the amber secret box.
const LINK_CLASS: &str = "font-medium text-indigo-700 underline hover:text-indigo-900 focus-visible:rounded-sm focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600";

#[component]
fn NewKeySecret(created: CreatedApiKey) -> impl IntoView {
    let secret = created.secret.clone();
    view! {
        <div role="status" class="rounded-lg border border-amber-300 bg-amber-50 p-4 text-sm text-amber-950" data-testid="api-key-secret-box">
            <p class="font-medium">"Key \"" {created.key.name.clone()} "\" created. Copy it now: you won't see it again."</p>
            <label for="api-key-secret" class="sr-only">"API key secret"</label>
            <div class="mt-2 flex flex-col gap-2 sm:flex-row sm:items-center">
                <input id="api-key-secret" readonly=true value=secret.clone() data-testid="api-key-secret"
                    class="w-full min-w-0 rounded-lg border border-amber-300 bg-white px-2 py-1.5 font-mono text-xs text-slate-900 focus:border-amber-500 focus:outline-none focus:ring-4 focus:ring-amber-200" />
                <div class="shrink-0 whitespace-nowrap">
                    <CopyButton text=secret label="Copy key" copied="Key copied" action=true testid="copy-api-key" />
                </div>
            </div>
            <p class="mt-1 text-xs">"We keep only a fingerprint of it. If you lose it, revoke it and create another."</p>
        </div>
    }
}

#[component]
fn ApiKeyList(
    slug: String,
    keys: Vec<ApiKeyView>,
    action: ServerAction<RevokeApiKey>,
) -> impl IntoView {
    if keys.is_empty() {
        return view! {
            <p class="text-sm text-slate-500" data-testid="api-keys-empty">
                "No API keys yet."
            </p>
        }
        .into_any();
    }
    view! {
        <ul role="list" class="divide-y divide-slate-100" data-testid="api-keys">
            {keys.into_iter().map(|key| {
                let slug = slug.clone();
                let last_used = key.last_used_at.as_deref().map(short_time).unwrap_or_else(|| "never".into());
                view! {
                    <li class="flex flex-col gap-2 py-3 sm:flex-row sm:items-start sm:justify-between" data-api-key=key.name.clone()>
                        <div class="min-w-0">
                            <p class="flex flex-wrap items-center gap-x-2 gap-y-1 font-medium text-slate-900">
                                <span class="break-words">{key.name.clone()}</span>
                                <code class="rounded bg-slate-100 px-1.5 py-0.5 text-xs text-slate-700" title="The key's first characters">{format!("{}…", key.prefix)}</code>
                            </p>
                            <p class="text-sm text-slate-600">{key.role.label()} " · created by " <span class="break-words">{key.created_by.clone()}</span></p>
                            <p class="text-sm text-slate-600">
                                "Created " <span class="whitespace-nowrap">{short_time(&key.created_at)}</span>
                                " · last used " <span class="whitespace-nowrap">{last_used}</span>
                            </p>
                        </div>
                        <details class="group text-sm sm:max-w-xs sm:shrink-0 sm:text-right">
                            <summary class="inline-flex cursor-pointer list-none items-center rounded-lg border border-rose-200 bg-white px-3 py-1.5 font-medium text-rose-700 hover:bg-rose-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-rose-600 group-open:bg-rose-50 [&::-webkit-details-marker]:hidden">
                                "Revoke"<span class="sr-only">" " {key.name.clone()}</span>
                            </summary>
                            <div class="mt-2 space-y-2 rounded-lg border border-rose-200 bg-rose-50 p-3 text-left text-rose-950">
                                <p>"Programs using \"" {key.name.clone()} "\" stop working at once. This can't be undone."</p>
                                <ActionForm action>
                                    <input type="hidden" name="slug" value=slug />
                                    <input type="hidden" name="id" value=key.id.to_string() />
                                    <button type="submit" class="rounded-lg bg-rose-600 px-3 py-1.5 font-semibold text-white hover:bg-rose-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-rose-600">"Yes, revoke this key"</button>
                                </ActionForm>
                            </div>
                        </details>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

/// `2026-12-07T12:34:56Z` → `2026-12-07 12:34 UTC`.
fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

#[component]
fn LeavePanel(slug: String, action: ServerAction<LeaveOrg>) -> impl IntoView {
    let errors = FormErrors::of(action);
    view! {
        <Panel title="Leave this organization">
            <p class="text-sm text-slate-600">"You'll lose access to its summaries. An owner can invite you back."</p>
            <ErrorBanner error=errors.general() />
            <ActionForm action>
                <input type="hidden" name="slug" value=slug />
                <SubmitButton label="Leave organization" pending=action.pending() danger=true />
            </ActionForm>
        </Panel>
    }
}

#[component]
fn DeletePanel(slug: String, action: ServerAction<DeleteOrg>) -> impl IntoView {
    let errors = FormErrors::of(action);
    view! {
        <Panel title="Delete this organization">
            <p class="text-sm text-slate-600">"Deletes its members, invitations and history for good. Type " <code>{slug.clone()}</code> " to confirm."</p>
            <ErrorBanner error=errors.general() />
            <ActionForm action attr:class="flex flex-col gap-3 sm:flex-row sm:items-start">
                <input type="hidden" name="slug" value=slug />
                <div class="flex-1"><TextField label="Organization slug" name="confirm" error=errors.field("confirm") /></div>
                <div class="sm:pt-6"><SubmitButton label="Delete organization" pending=action.pending() danger=true /></div>
            </ActionForm>
        </Panel>
    }
}

/// Owners download the org's history and summaries (the REST route, with
/// the session cookie: a plain link, so it works without JavaScript).
#[component]
fn ExportPanel(slug: String) -> impl IntoView {
    let json = format!("/api/v1/orgs/{slug}/export?format=json");
    let markdown = format!("/api/v1/orgs/{slug}/export?format=markdown");
    view! {
        <Panel title="Export data" id="export">
            <p class="text-sm text-slate-700">
                "Download this organization's history with every summary it got: JSON for programs, Markdown to read or keep in your notes. Only owners can export."
            </p>
            <div class="flex flex-wrap gap-3">
                <a href=json download="" data-testid="export-json" class="rounded-lg border border-slate-300 px-4 py-2 font-semibold hover:bg-slate-50">"Download JSON"</a>
                <a href=markdown download="" data-testid="export-markdown" class="rounded-lg border border-slate-300 px-4 py-2 font-semibold hover:bg-slate-50">"Download Markdown"</a>
            </div>
        </Panel>
    }
}
