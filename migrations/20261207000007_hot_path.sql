-- The cached summary in one round trip, a sweeper for abandoned
-- reservations, and a cool-down after transient failures.

-- A request for a video that is already in the shared cache used to cost
-- eight transactions (membership, abandoned-reservation sweep, history
-- check, cache peek, reservation, then a background claim, peek and
-- settle). This function does the whole of it inside the caller's tenant
-- transaction, in one statement:
--   * the member asked too often this minute -> 'throttled' with the
--                                             seconds to wait (counted in
--                                             rate_limits, shared by every
--                                             process; p_per_minute 0 = off);
--   * the video is not ready               -> 'miss' (the caller takes the
--                                             lease/single-flight path);
--   * already in this org's history        -> 'history', free;
--   * new to the org, quota left           -> 'charged': history row, unit
--                                             spent and its ledger row, all
--                                             committed together;
--   * new to the org, quota used up        -> 'exhausted' with the numbers
--                                             for the 429, nothing written.
-- It is SECURITY INVOKER, so forced RLS applies to every statement in it:
-- p_org must be the transaction's app.org_id or the inserts are refused.
-- The history insert comes first and its unique key (org_id, video_id)
-- serializes two requests of one org for one video: the second waits for
-- the first to commit, then finds the row and pays nothing. The counter
-- upsert is the same conditional statement quota reservations use, so the
-- count can never pass the limit. Lock order is always history row, then
-- counter row, which every other writer of these tables also follows.
create function serve_ready_summary(
    p_org uuid, p_user uuid, p_video text, p_limits jsonb, p_per_minute integer)
returns table (
    outcome          text,
    from_cache       boolean,
    private          boolean,
    title            text,
    channel          text,
    duration_seconds integer,
    thumbnail_url    text,
    summary          text,
    model            text,
    prompt_version   text,
    built_in         boolean,
    used             integer,
    max_used         integer,
    resets_at        timestamptz,
    retry_after      integer
)
language plpgsql volatile
as $$
declare
    v          record;
    own        record;
    history_id uuid;
    known      boolean;
    period     timestamptz;
    ent        record;
    hits       integer;
    wait       float8;
begin
    if p_per_minute > 0 then
        insert into rate_limits as r (key, window_start, hits)
        values ('summaries:member:' || p_user, now(), 1)
        on conflict (key) do update set
            hits = case when r.window_start <= now() - interval '1 minute' then 1 else r.hits + 1 end,
            window_start = case when r.window_start <= now() - interval '1 minute' then now() else r.window_start end
        returning r.hits, extract(epoch from (r.window_start + interval '1 minute' - now()))::float8
        into hits, wait;
        if hits > p_per_minute then
            return query select 'throttled'::text, null::boolean, null::boolean, null::text, null::text,
                null::integer, null::text, null::text, null::text, null::text, null::boolean,
                null::integer, p_per_minute, null::timestamptz, greatest(ceil(wait)::integer, 1);
            return;
        end if;
    end if;

    select vi.title, vi.channel, vi.duration_seconds, vi.thumbnail_url, vi.summary::text as summary,
           vi.model, vi.prompt_version, vi.built_in
      into v
      from videos vi
     where vi.video_id = p_video and vi.status = 'ready' and vi.summary is not null;
    if not found then
        return query select 'miss'::text, null::boolean, null::boolean, null::text, null::text, null::integer,
            null::text, null::text, null::text, null::text, null::boolean, null::integer, null::integer,
            null::timestamptz, null::integer;
        return;
    end if;

    insert into user_summaries (org_id, id, user_id, video_id, title, from_cache)
    values (p_org, gen_random_uuid(), p_user, p_video, v.title, true)
    on conflict (org_id, video_id) do nothing
    returning id into history_id;

    if history_id is null then
        -- Already in the history (or a concurrent request of this org just
        -- put it there): reopening is free. A transcript the org pasted
        -- itself wins over the shared summary, as on the summary page.
        select s.from_cache into known from user_summaries s
         where s.org_id = p_org and s.video_id = p_video;
        select o.summary::text as summary, o.model, o.prompt_version, o.built_in into own
          from own_transcript_summaries o
         where o.org_id = p_org and o.video_id = p_video;
        if found then
            return query select 'history'::text, false, true, 'Your pasted transcript'::text, null::text,
                null::integer, null::text, own.summary, own.model, own.prompt_version, own.built_in,
                null::integer, null::integer, null::timestamptz, null::integer;
        else
            return query select 'history'::text, coalesce(known, true), false, v.title, v.channel,
                v.duration_seconds, v.thumbnail_url, v.summary, v.model, v.prompt_version, v.built_in,
                null::integer, null::integer, null::timestamptz, null::integer;
        end if;
        return;
    end if;

    select e.period_start, e.period_end, coalesce((p_limits ->> e.plan)::int, 0) as max_used
      into ent from org_entitlement(p_org) e;
    insert into usage_counters as c (org_id, period_start, period_end, used)
    select p_org, ent.period_start, ent.period_end, 1 where ent.max_used > 0
    on conflict (org_id, period_start) do update set used = c.used + 1
        where c.used < ent.max_used
    returning c.period_start into period;

    if period is null then
        -- Used up: take the history row back (nobody else ever saw it).
        delete from user_summaries where org_id = p_org and id = history_id;
        return query select 'exhausted'::text, null::boolean, null::boolean, null::text, null::text,
            null::integer, null::text, null::text, null::text, null::text, null::boolean,
            coalesce((select c.used from usage_counters c
                      where c.org_id = p_org and c.period_start = ent.period_start), 0),
            ent.max_used, ent.period_end, null::integer;
        return;
    end if;

    insert into usage_records (org_id, id, user_id, video_id, period_start, status, settled_at)
    values (p_org, gen_random_uuid(), p_user, p_video, period, 'succeeded', now());

    return query select 'charged'::text, true, false, v.title, v.channel, v.duration_seconds,
        v.thumbnail_url, v.summary, v.model, v.prompt_version, v.built_in,
        null::integer, null::integer, null::timestamptz, null::integer;
end
$$;
revoke execute on function serve_ready_summary(uuid, uuid, text, jsonb, integer) from public;
grant execute on function serve_ready_summary(uuid, uuid, text, jsonb, integer) to tldw_app;

-- Which orgs hold a reservation that nobody is settling any more (its
-- request died with its process): a periodic sweeper in every app process
-- settles them, so a unit never stays reserved much longer than a lease
-- even when the org makes no further request. The answer is only org ids;
-- the settling itself happens in each org's own tenant transaction. Owned
-- by tldw_definer (like account_orgs) because it must look across tenants,
-- and executable by the app role only.
create function orgs_with_abandoned_reservations(p_lease_seconds float8)
returns table (org_id uuid)
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select distinct r.org_id
    from public.usage_records r left join public.videos v on v.video_id = r.video_id
    where r.status = 'reserved'
      and r.created_at < now() - make_interval(secs => p_lease_seconds)
      and (v.video_id is null
           or v.status <> 'pending'
           or v.lease_expires_at <= now() - make_interval(secs => p_lease_seconds))
    limit 100
$$;
grant select on usage_records, videos to tldw_definer;
alter function orgs_with_abandoned_reservations(float8) owner to tldw_definer;
revoke execute on function orgs_with_abandoned_reservations(float8) from public;
grant execute on function orgs_with_abandoned_reservations(float8) to tldw_app;
-- The sweeper's scan: open reservations are few, so index only those.
create index usage_records_open_idx on usage_records (created_at) where status = 'reserved';

-- A failed model call is shared, not repeated: the failure is cached for a
-- short cool-down that grows with each consecutive transient failure, so
-- every waiter (and every new request meanwhile) gets it at once and pays
-- nothing, and model calls per video stay bounded by one attempt's retries.
alter table videos add column consecutive_failures integer not null default 0;
