-- Tenancy foundation: organizations, their members, and the shared video cache.
--
-- Runs as the owner role (tldw_owner), which owns every table. The app connects
-- as tldw_app: no table ownership and no BYPASSRLS, so the policies below bind
-- it. FORCE also binds the owner, so a mistake in a migration or an admin
-- session cannot read across tenants either.
--
-- Every tenant policy keys on the same expression:
--     (select nullif(current_setting('app.org_id', true), '')::uuid)
-- - `true` (missing_ok): an unset setting is NULL instead of an error;
-- - nullif(…, ''): a pooled connection that ran a tenant transaction before
--   reports '' afterwards (also through PgBouncer), which must mean "no org";
-- - the sub-select makes PostgreSQL evaluate it once per statement (an
--   initplan), not once per row.
-- With no org set the comparison is NULL, so no row is visible or writable.

-- The app role only needs to find objects in the schema, not create them.
revoke create on schema public from public;
grant usage on schema public to tldw_app;
-- /readyz compares applied migrations with the ones the binary carries.
grant select on _sqlx_migrations to tldw_app;

-- The tenants. An org's own id is its tenant key, so the policy compares `id`.
create table orgs (
    id          uuid primary key,
    slug        text not null unique
                check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$'),
    name        text not null check (length(name) between 1 and 100),
    created_at  timestamptz not null default now()
);

alter table orgs enable row level security;
alter table orgs force row level security;
create policy orgs_tenant_isolation on orgs
    using (id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (id = (select nullif(current_setting('app.org_id', true), '')::uuid));

-- Members of an organization. The key starts with org_id so every lookup and
-- every foreign key stays inside one tenant (and routes by it under Citus).
create table users (
    org_id      uuid not null references orgs (id) on delete cascade,
    id          uuid not null,
    email       text not null check (length(email) between 3 and 254),
    role        text not null default 'member' check (role in ('owner', 'admin', 'member')),
    created_at  timestamptz not null default now(),
    primary key (org_id, id),
    unique (org_id, email)
);

alter table users enable row level security;
alter table users force row level security;
create policy users_tenant_isolation on users
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

-- The shared summary cache: one row per YouTube video, for every tenant. It
-- must never hold tenant data (no org, no user, no user-written prompt), which
-- is why it has no RLS and the catalog test allow-lists it by name.
create table videos (
    video_id          text primary key check (video_id ~ '^[A-Za-z0-9_-]{11}$'),
    title             text,
    channel           text,
    duration_seconds  integer check (duration_seconds >= 0),
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now()
);

grant select, insert, update, delete on orgs, users to tldw_app;
grant select, insert, update on videos to tldw_app;
