-- Summaries of transcripts that members pasted themselves (when YouTube has
-- none or blocks us). They are the org's own content: tenant-scoped, under
-- forced RLS, and never copied into the shared videos cache.
create table own_transcript_summaries (
    org_id             uuid not null references orgs (id) on delete cascade,
    id                 uuid not null,
    user_id            uuid not null,
    video_id           text not null check (video_id ~ '^[A-Za-z0-9_-]{11}$'),
    summary            jsonb not null,
    model              text not null,
    prompt_version     text not null,
    built_in           boolean not null,
    prompt_tokens      bigint not null default 0,
    completion_tokens  bigint not null default 0,
    cost_micros        bigint not null default 0,
    created_at         timestamptz not null default now(),
    primary key (org_id, id),
    unique (org_id, video_id),
    foreign key (org_id, user_id) references users (org_id, id) on delete cascade
);

alter table own_transcript_summaries enable row level security;
alter table own_transcript_summaries force row level security;
create policy own_transcript_summaries_tenant_isolation on own_transcript_summaries
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

grant select, insert, update, delete on own_transcript_summaries to tldw_app;
