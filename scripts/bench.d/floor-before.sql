-- The SQL floor of today's cache hit (before issue 15): every statement that
-- POST /api/v1/orgs/{slug}/summaries sends for a ready video that is not yet
-- in the org's history, in order, in the same transactions. Copied from
-- clerk_link.rs (account_for), identity.rs (member_of), summaries.rs
-- (settle_abandoned, already_requested, request, settle), video_cache.rs
-- (peek, claim) and quota.rs (reserve, succeed).
--
-- scripts/bench runs this with `pgbench -M prepared` as tldw_app. Each run
-- of the script picks one of 100 bench orgs; @ORG@, @USER@ (users.id) and
-- @ACCOUNT@ become uuid-valued SQL expressions over pgbench variables,
-- @CLERK_USER@ and @ROLE@ text ones (see make_floor_script in scripts/bench);
-- @LIMITS@ (the plans' JSON limits), @LEASE@ (seconds) and @VIDEOS@ are
-- literals; :v is a random bench video, bv000000001…
-- Not reproduced: sqlx's ping (a Sync round trip) on every pool acquire.
-- Each client draws from its own residue class of videos (v ≡ client_id + 1
-- mod :clients), so two clients never hold the same (org, video) at once:
-- the app answers such a collision by joining the first request, but here
-- the one-open-reservation index would abort the client.
\set v 1 + :client_id + :clients * random(0, (@VIDEOS@ - 1 - :client_id) / :clients)

-- 1. Authenticate: ensure_account (shared transaction).
BEGIN;
select id from accounts where clerk_user_id = @CLERK_USER@;
COMMIT;

-- 2. ensure_membership (tenant transaction for the token's org).
BEGIN;
select set_config('app.org_id', @ORG@::text, true), set_config('app.user_id', '', true);
select exists (select from orgs where id = @ORG@);
insert into users (org_id, id, account_id, role) values (@ORG@, gen_random_uuid(), @ACCOUNT@, @ROLE@)
    on conflict (org_id, account_id) do update set role = excluded.role
    where users.role is distinct from excluded.role;
COMMIT;

-- 3. member_of: the account's orgs (shared transaction).
BEGIN;
select org_id, user_id, slug, name, role, personal from account_orgs(@ACCOUNT@);
COMMIT;

-- 4. settle_abandoned.
BEGIN;
select set_config('app.org_id', @ORG@::text, true), set_config('app.user_id', @USER@::text, true);
select r.id, r.user_id, r.video_id, v.status, v.title
    from usage_records r left join videos v on v.video_id = r.video_id
    where r.org_id = @ORG@ and r.status = 'reserved'
      and r.created_at < now() - make_interval(secs => @LEASE@)
      and (v.video_id is null
           or v.status <> 'pending'
           or v.lease_expires_at <= now() - make_interval(secs => @LEASE@));
COMMIT;

-- 5. already_requested.
BEGIN;
select set_config('app.org_id', @ORG@::text, true), set_config('app.user_id', @USER@::text, true);
select exists (select from user_summaries where org_id = @ORG@ and video_id = 'bv' || lpad(:v::text, 9, '0'))
    or exists (select from usage_records where org_id = @ORG@ and video_id = 'bv' || lpad(:v::text, 9, '0') and status = 'reserved');
COMMIT;

-- 6. video_cache::peek (shared transaction).
BEGIN;
select status, title, channel, duration_seconds, thumbnail_url, summary, model, prompt_version,
        built_in, failure_message,
        coalesce(lease_expires_at > now(), false),
        coalesce(retry_after > now(), false),
        failure_kind is not null and retry_after is not null,
        stage, partial_text
    from videos where video_id = 'bv' || lpad(:v::text, 9, '0');
COMMIT;

-- 7. quota::reserve.
BEGIN;
select set_config('app.org_id', @ORG@::text, true), set_config('app.user_id', @USER@::text, true);
with entitlement as (
     select e.period_start, e.period_end, coalesce(('@LIMITS@'::jsonb ->> e.plan)::int, 0) as max_used
     from org_entitlement(@ORG@) e
 ),
 counter as (
     insert into usage_counters as c (org_id, period_start, period_end, used)
     select @ORG@, period_start, period_end, 1 from entitlement where max_used > 0
     on conflict (org_id, period_start) do update set used = c.used + 1
         where c.used < (select max_used from entitlement)
     returning c.period_start
 )
 insert into usage_records (org_id, id, user_id, video_id, period_start)
 select @ORG@, gen_random_uuid(), @USER@, 'bv' || lpad(:v::text, 9, '0'), period_start from counter
 returning id as reservation \gset
COMMIT;

-- 8. The spawned settle task: obtain → video_cache::claim (refused: the
--    video is ready), then peek again.
BEGIN;
insert into videos as v (video_id, status, lease_owner, lease_expires_at, attempt, stage)
 values ('bv' || lpad(:v::text, 9, '0'), 'pending', gen_random_uuid(), now() + make_interval(secs => @LEASE@), 1, 'fetching_transcript')
 on conflict (video_id) do update set
     status = 'pending', lease_owner = excluded.lease_owner, lease_expires_at = excluded.lease_expires_at,
     attempt = v.attempt + 1, failure_kind = null, failure_message = null, retry_after = null,
     stage = 'fetching_transcript', partial_text = null, updated_at = now()
 where (v.status = 'pending' and v.lease_expires_at <= now())
    or (v.status = 'failed' and (v.retry_after is null or v.retry_after <= now()))
    or (v.status = 'ready' and v.summary is null)
 returning attempt;
COMMIT;
BEGIN;
select status, title, channel, duration_seconds, thumbnail_url, summary, model, prompt_version,
        built_in, failure_message,
        coalesce(lease_expires_at > now(), false),
        coalesce(retry_after > now(), false),
        failure_kind is not null and retry_after is not null,
        stage, partial_text
    from videos where video_id = 'bv' || lpad(:v::text, 9, '0');
COMMIT;

-- 9. settle_success: record the history row, spend the unit.
BEGIN;
select set_config('app.org_id', @ORG@::text, true), set_config('app.user_id', @USER@::text, true);
insert into user_summaries (org_id, id, user_id, video_id, title, from_cache)
    values (@ORG@, gen_random_uuid(), @USER@, 'bv' || lpad(:v::text, 9, '0'), 'Bench video', true)
    on conflict (org_id, video_id) do nothing;
update usage_records set status = 'succeeded', settled_at = now()
    where org_id = @ORG@ and id = :reservation and status = 'reserved';
COMMIT;
