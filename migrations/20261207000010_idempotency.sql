-- Idempotency-Key for the REST API's POSTs (summaries, invitations,
-- checkout): the first request with a key runs and its answer is kept for
-- 24 h; a retry with the same key and the same request gets that answer and
-- does nothing again, in whichever process it lands.
--
-- A key belongs to one org and one principal (`key:<api key id>` or
-- `user:<member id>`): two programs of one org may both count their keys
-- from 1, and must not receive each other's answers.
--
-- Life of a row (src/server/services/idempotency.rs):
--   * claimed: inserted with status null and a lease, committed at once, so
--     a concurrent duplicate in any process finds it and waits;
--   * completed: status, body and the headers that matter are filled in;
--   * released: deleted again when the answer must not be kept (a 5xx, a
--     429, a database outage: nothing was done, so a retry should run);
--   * taken over: a claim whose lease passed with no answer (its process
--     died) is reset by the next claimant, which gets a new claim_id; the
--     old claimant's late complete/release then matches nothing;
--   * expired: after expires_at every read ignores it, the next claim
--     overwrites it, and purge_expired deletes it.
create table idempotency_keys (
    org_id               uuid not null references orgs (id) on delete cascade,
    principal            text not null check (principal ~ '^(key|user):[0-9a-f-]{36}$'),
    key                  text not null check (key ~ '^[\x21-\x7e]{1,255}$'),
    -- Fences complete/release to the claim that is still current.
    claim_id             uuid not null,
    method               text not null,
    path                 text not null,
    -- SHA-256 of the canonical request body.
    request_fingerprint  bytea not null check (length(request_fingerprint) = 32),
    -- Null while the first request is still running.
    status               smallint check (status between 100 and 599),
    -- The exact JSON text sent, so a replay is byte for byte the same
    -- (jsonb would reorder keys).
    response_body        text,
    -- [[name, value], …]: only Location and Retry-After.
    response_headers     jsonb,
    claimed_at           timestamptz not null default now(),
    lease_until          timestamptz not null,
    expires_at           timestamptz not null,
    primary key (org_id, principal, key),
    check ((status is null) = (response_body is null))
);
-- The purge's scan.
create index idempotency_keys_expires_idx on idempotency_keys (expires_at);

alter table idempotency_keys enable row level security;
alter table idempotency_keys force row level security;
create policy idempotency_keys_tenant_isolation on idempotency_keys
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

grant select, insert, update, delete on idempotency_keys to tldw_app;

-- Which orgs hold expired keys: the purge deletes them in each org's own
-- tenant transaction, so, like orgs_with_abandoned_reservations, this
-- narrow definer function answers org ids only and reads nothing else.
create function orgs_with_expired_idempotency_keys()
returns table (org_id uuid)
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select distinct k.org_id
    from public.idempotency_keys k
    where k.expires_at <= now()
    limit 1000
$$;
grant select on idempotency_keys to tldw_definer;
alter function orgs_with_expired_idempotency_keys() owner to tldw_definer;
revoke execute on function orgs_with_expired_idempotency_keys() from public;
grant execute on function orgs_with_expired_idempotency_keys() to tldw_app;
