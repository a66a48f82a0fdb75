-- Clerk mode follows Clerk. Memberships of Clerk orgs are created lazily
-- from verified session tokens and changed or removed by Clerk's webhooks
-- (POST /webhooks/clerk). Neither source is ordered: Svix redelivers and
-- reorders events, and a session token stays valid for 60 s after Clerk
-- changed its mind. These columns and tables let the newest fact win.

-- Clerk's time of the newest fact applied to this membership: a webhook's
-- event time, or the iat of the session token that last set the role.
-- NULL for memberships of our own orgs, which Clerk knows nothing about.
alter table users add column clerk_synced_at timestamptz;

-- A membership that Clerk removed. A token issued before the removal (or
-- an older webhook) must not bring it back; a token issued after it means
-- Clerk added the member again. No foreign key to orgs: the removal may
-- arrive before we ever saw the org, and must still hold once we do.
create table clerk_removed_members (
    org_id         uuid not null,
    clerk_user_id  text not null check (length(clerk_user_id) between 1 and 256),
    removed_at     timestamptz not null,
    primary key (org_id, clerk_user_id)
);
alter table clerk_removed_members enable row level security;
alter table clerk_removed_members force row level security;
create policy clerk_removed_members_tenant_isolation on clerk_removed_members
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

-- Clerk users deleted in Clerk (user.deleted). Clerk never reuses a user
-- id, so the tombstone is permanent: a token minted just before the
-- deletion must not create the account again.
create table clerk_deleted_users (
    clerk_user_id  text primary key check (length(clerk_user_id) between 1 and 256),
    deleted_at     timestamptz not null default now()
);

grant select, insert, update, delete on clerk_removed_members to tldw_app;
grant select, insert on clerk_deleted_users to tldw_app;
