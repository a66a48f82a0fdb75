-- Per-org API keys: a program acts as a member of exactly one org.
--
-- A key is a random secret shown once at creation (`tldw_` + 43 base64url
-- characters of 32 random bytes). Only its SHA-256 is stored. A fast hash
-- is right here, unlike for passwords: the secret has 256 bits of
-- entropy, so there is nothing to brute-force, and a slow hash would only
-- add latency to every API call.
--
-- A key's role is 'admin' or 'member', never 'owner': deleting the org and
-- handing it over stay with a person signed in. The role is also capped by
-- the creator's role at creation, and, on every use, by the creator's
-- current role (a demoted creator demotes their keys; see
-- api_key_principal below).
create table api_keys (
    org_id        uuid not null references orgs (id) on delete cascade,
    id            uuid not null,
    name          text not null check (length(name) between 1 and 60),
    role          text not null check (role in ('admin', 'member')),
    -- The creator's member row. A key speaks for its creator, so when the
    -- creator leaves or is removed the key goes with them (cascade); the
    -- lookup below joins the member row as well, so it could not outlive
    -- them even without the cascade.
    created_by    uuid not null,
    -- The secret's first 12 characters (`tldw_` + 7), shown in lists so a
    -- person can tell keys apart; it reveals 42 of the 256 bits.
    prefix        text not null check (length(prefix) = 12),
    secret_hash   bytea not null unique check (length(secret_hash) = 32),
    created_at    timestamptz not null default now(),
    -- Written at most once a minute per key (a conditional update), so a
    -- busy key is not a write per request.
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    primary key (org_id, id),
    foreign key (org_id, created_by) references users (org_id, id) on delete cascade
);
-- The settings page lists an org's live keys, newest first.
create index api_keys_live_idx on api_keys (org_id, created_at desc) where revoked_at is null;

alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy api_keys_tenant_isolation on api_keys
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

-- Revoking is an update (the row stays, for the record); deleting happens
-- only by cascade with the org or the creator.
grant select, insert, update on api_keys to tldw_app;

-- A Bearer key arrives before we know its org, so the org cannot be set
-- for RLS yet. Like account_orgs, one narrow function answers just that:
-- given the hash of a presented secret, the key's org, its role, and who
-- it speaks for, with the creator's CURRENT role in the org. A revoked
-- key, or one whose creator is no longer a member, gives no row. It runs
-- as tldw_definer (NOLOGIN, BYPASSRLS), with a pinned search_path, and only
-- tldw_app may call it. Knowing the hash means knowing the secret (or the
-- table), so the function reveals nothing a caller does not already hold.
-- `needs_touch` says whether last_used_at is older than a minute, so the
-- caller writes it only then.
create function api_key_principal(p_hash bytea)
returns table (
    key_id         uuid,
    org_id         uuid,
    org_slug       text,
    org_name       text,
    org_personal   boolean,
    key_role       text,
    user_id        uuid,
    account_id     uuid,
    account_email  text,
    member_role    text,
    needs_touch    boolean
)
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select k.id, o.id, o.slug, o.name, o.personal, k.role, u.id, u.account_id, a.email, u.role,
           k.last_used_at is null or k.last_used_at < now() - interval '1 minute'
    from public.api_keys k
    join public.users u on u.org_id = k.org_id and u.id = k.created_by
    join public.orgs o on o.id = k.org_id
    join public.accounts a on a.id = u.account_id
    where k.secret_hash = p_hash and k.revoked_at is null
$$;
grant select on api_keys to tldw_definer;
-- Only what the principal needs from accounts: never the password hash.
grant select (id, email) on accounts to tldw_definer;
alter function api_key_principal(bytea) owner to tldw_definer;
revoke execute on function api_key_principal(bytea) from public;
grant execute on function api_key_principal(bytea) to tldw_app;
