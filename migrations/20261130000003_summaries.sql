-- The shared summary cache, per-org quotas and per-org history.

-- videos becomes the single-flight cache. One row per YouTube video, shared
-- by every tenant, so it holds only what YouTube and the model produced: no
-- org, no user, no user-written prompt.
--   status pending: someone holds (or held) the lease and is working;
--          ready:   summary present, served to everyone from now on;
--          failed:  permanent failure (no captions…) until retry_after, or a
--                   transient one that the next request may retry at once.
-- lease_owner + attempt fence completions: a worker whose lease expired and
-- was taken over cannot overwrite its successor's result.
alter table videos
    add column status            text not null default 'pending' check (status in ('pending', 'ready', 'failed')),
    add column lease_owner       uuid,
    add column lease_expires_at  timestamptz,
    add column attempt           integer not null default 0,
    add column failure_kind      text,
    add column failure_message   text,
    add column retry_after       timestamptz,
    add column thumbnail_url     text,
    add column language          text,
    add column summary           jsonb,
    add column model             text,
    add column prompt_version    text,
    add column built_in          boolean,
    add column prompt_tokens     bigint check (prompt_tokens >= 0),
    add column completion_tokens bigint check (completion_tokens >= 0),
    -- Millionths of a US dollar: what the one LLM call for this video cost.
    add column cost_micros       bigint check (cost_micros >= 0),
    add column completed_at      timestamptz;

-- Waiters are woken with NOTIFY video_ready, '<video_id>' when a row settles.

-- One counter per org and period, read in O(1) by the dashboard. Reserving
-- is a single conditional upsert, so concurrent requests can never push it
-- past the limit; refunds decrement it, never below zero.
create table usage_counters (
    org_id        uuid not null references orgs (id) on delete cascade,
    period_start  timestamptz not null,
    period_end    timestamptz not null,
    used          integer not null default 0 check (used >= 0),
    primary key (org_id, period_start),
    check (period_end > period_start)
);

-- The ledger beside the counter: one row per reserved unit, refunded at
-- most once (the status transition is the guard).
create table usage_records (
    org_id        uuid not null references orgs (id) on delete cascade,
    id            uuid not null,
    user_id       uuid not null,
    video_id      text not null check (video_id ~ '^[A-Za-z0-9_-]{11}$'),
    period_start  timestamptz not null,
    status        text not null default 'reserved' check (status in ('reserved', 'succeeded', 'refunded')),
    created_at    timestamptz not null default now(),
    settled_at    timestamptz,
    primary key (org_id, id),
    foreign key (org_id, user_id) references users (org_id, id) on delete cascade,
    foreign key (org_id, period_start) references usage_counters (org_id, period_start) on delete cascade
);
create index usage_records_period_idx on usage_records (org_id, period_start);

-- An org's history: which videos its members summarized. A video already
-- here is free to reopen.
create table user_summaries (
    org_id        uuid not null references orgs (id) on delete cascade,
    id            uuid not null,
    user_id       uuid not null,
    video_id      text not null references videos (video_id),
    title         text,
    from_cache    boolean not null default false,
    created_at    timestamptz not null default now(),
    primary key (org_id, id),
    unique (org_id, video_id),
    foreign key (org_id, user_id) references users (org_id, id) on delete cascade
);
-- Keyset pagination: newest first, ties broken by id.
create index user_summaries_recent_idx on user_summaries (org_id, created_at desc, id desc);

alter table usage_counters enable row level security;
alter table usage_counters force row level security;
create policy usage_counters_tenant_isolation on usage_counters
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

alter table usage_records enable row level security;
alter table usage_records force row level security;
create policy usage_records_tenant_isolation on usage_records
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

alter table user_summaries enable row level security;
alter table user_summaries force row level security;
create policy user_summaries_tenant_isolation on user_summaries
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

grant select, insert, update, delete on usage_counters, usage_records, user_summaries to tldw_app;

-- What a waiting page shows while the claimant works: the stage
-- (fetching_transcript, summarizing, done) and the text streamed so far.
-- Both come from YouTube and the model, never from a tenant.
alter table videos
    add column stage         text,
    add column partial_text  text;
