-- Accounts, sessions, memberships and invitations.
--
-- accounts and sessions are global: a person signs in before any org is
-- chosen, and one account can belong to many orgs. They hold identity, not
-- tenant data, and the RLS catalog test allow-lists them by name.

create table accounts (
    id             uuid primary key,
    -- Lower-cased on the way in (domain::Email); NULL for a Clerk account
    -- whose token carried no email.
    email          text unique check (email = lower(email) and length(email) between 3 and 254),
    -- argon2id PHC string; NULL for Clerk accounts, which have no password here.
    password_hash  text,
    clerk_user_id  text unique,
    created_at     timestamptz not null default now(),
    check (email is not null or clerk_user_id is not null)
);

-- Built-in sign-in sessions. The cookie holds a random token; only its
-- SHA-256 is stored, so a leaked table cannot be replayed as cookies.
create table sessions (
    token_hash     bytea primary key check (length(token_hash) = 32),
    account_id     uuid not null references accounts (id) on delete cascade,
    -- A preference only: membership is re-checked on every request.
    active_org_id  uuid,
    created_at     timestamptz not null default now(),
    last_seen_at   timestamptz not null default now(),
    expires_at     timestamptz not null,
    user_agent     text
);
create index sessions_account_idx on sessions (account_id);

-- Members now point at their account; the email lives there.
alter table users add column account_id uuid not null references accounts (id) on delete cascade;
alter table users drop constraint users_org_id_email_key;
alter table users drop column email;
alter table users add constraint users_org_account_key unique (org_id, account_id);
create index users_account_idx on users (account_id);

-- A Clerk organization maps to exactly one of ours.
alter table orgs add column clerk_org_id text unique;
-- Every account gets one personal org at sign-up; it cannot be left.
alter table orgs add column personal boolean not null default false;

create table invitations (
    org_id       uuid not null references orgs (id) on delete cascade,
    id           uuid not null,
    email        text not null check (email = lower(email)),
    role         text not null check (role in ('admin', 'member')),
    -- SHA-256 of the link's token; the token itself is never stored.
    token_hash   bytea not null unique check (length(token_hash) = 32),
    invited_by   uuid not null,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    accepted_at  timestamptz,
    accepted_by  uuid,
    revoked_at   timestamptz,
    primary key (org_id, id),
    foreign key (org_id, invited_by) references users (org_id, id) on delete cascade,
    foreign key (org_id, accepted_by) references users (org_id, id) on delete set null (accepted_by),
    check (accepted_at is null or revoked_at is null)
);
-- At most one open invitation per address and org.
create unique index invitations_open_email_idx on invitations (org_id, email)
    where accepted_at is null and revoked_at is null;

alter table invitations enable row level security;
alter table invitations force row level security;
create policy invitations_tenant_isolation on invitations
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

-- Sign-in and sign-up attempts, counted in the database so every app
-- process shares one limit. Keys are "signin:ip:…", "signin:email:…" etc.
create table rate_limits (
    key           text primary key,
    window_start  timestamptz not null,
    hits          integer not null
);

-- The org switcher lists every org an account belongs to, which crosses
-- tenants. Instead of weakening the policies, one narrow function answers
-- just that question. It runs as tldw_definer (NOLOGIN, BYPASSRLS: FORCE
-- binds the table owner too, so only such a role can read across orgs),
-- with a pinned search_path, and only tldw_app may call it.
create function account_orgs(p_account_id uuid)
returns table (org_id uuid, user_id uuid, slug text, name text, role text, personal boolean)
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select o.id, u.id, o.slug, o.name, u.role, o.personal
    from public.users u join public.orgs o on o.id = u.org_id
    where u.account_id = p_account_id
    order by o.personal desc, o.name
$$;
grant usage, create on schema public to tldw_definer;
grant select on orgs, users to tldw_definer;
alter function account_orgs(uuid) owner to tldw_definer;
revoke execute on function account_orgs(uuid) from public;
grant execute on function account_orgs(uuid) to tldw_app;

grant select, insert, update, delete on accounts, sessions, invitations, rate_limits to tldw_app;
