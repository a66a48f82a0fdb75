-- The per-minute throttle of summary requests is keyed by the caller: a
-- person is throttled as a member (`summaries:member:<user>`), a program as
-- its API key (`summaries:key:<key>`), each with its own limit, so a busy
-- integration does not lock its creator out of the browser and a person
-- cannot borrow a key's allowance. The function is otherwise unchanged from
-- 20261207000008_summary_language.sql; it takes the throttle key (and the
-- limit that goes with it) from the caller.
drop function serve_ready_summary(uuid, uuid, text, jsonb, integer);

create function serve_ready_summary(
    p_org uuid, p_user uuid, p_video text, p_limits jsonb, p_per_minute integer,
    p_throttle_key text)
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
    h          record;
    own        record;
    history_id uuid;
    known      boolean;
    period     timestamptz;
    ent        record;
    hits       integer;
    wait       float8;
    v_wanted   text;
    v_variant  text := '';
    v_kept     text;
begin
    if p_per_minute > 0 then
        insert into rate_limits as r (key, window_start, hits)
        values (p_throttle_key, now(), 1)
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
           vi.model, vi.prompt_version, vi.built_in, vi.language
      into v
      from videos vi
     where vi.video_id = p_video and vi.variant = '' and vi.status = 'ready' and vi.summary is not null;
    if not found then
        return query select 'miss'::text, null::boolean, null::boolean, null::text, null::text, null::integer,
            null::text, null::text, null::text, null::text, null::boolean, null::integer, null::integer,
            null::timestamptz, null::integer;
        return;
    end if;

    select o.summary_language into v_wanted from orgs o where o.id = p_org;
    if v_wanted is not null and not coalesce(v.built_in, false)
       and split_part(split_part(lower(coalesce(v.language, '')), '-', 1), '_', 1) <> v_wanted then
        v_variant := v_wanted;
        select vi.title, vi.channel, vi.duration_seconds, vi.thumbnail_url, vi.summary::text as summary,
               vi.model, vi.prompt_version, vi.built_in, vi.language
          into v
          from videos vi
         where vi.video_id = p_video and vi.variant = v_variant and vi.status = 'ready' and vi.summary is not null;
        if not found then
            -- Not made in that language yet. If the org already has the
            -- video (from before it chose a language), reopen that.
            select s.variant into v_kept from user_summaries s
             where s.org_id = p_org and s.video_id = p_video;
            if v_kept is not null then
                v_variant := v_kept;
                select vi.title, vi.channel, vi.duration_seconds, vi.thumbnail_url,
                       vi.summary::text as summary, vi.model, vi.prompt_version, vi.built_in, vi.language
                  into v
                  from videos vi
                 where vi.video_id = p_video and vi.variant = v_variant and vi.status = 'ready'
                   and vi.summary is not null;
            end if;
            if v_kept is null or not found then
                return query select 'miss'::text, null::boolean, null::boolean, null::text, null::text,
                    null::integer, null::text, null::text, null::text, null::text, null::boolean,
                    null::integer, null::integer, null::timestamptz, null::integer;
                return;
            end if;
        end if;
    end if;

    insert into user_summaries (org_id, id, user_id, video_id, variant, title, from_cache)
    values (p_org, gen_random_uuid(), p_user, p_video, v_variant, v.title, true)
    on conflict (org_id, video_id) do nothing
    returning id into history_id;

    if history_id is null then
        -- Already in the history (or a concurrent request of this org just
        -- put it there): reopening is free. A transcript the org pasted
        -- itself wins over the shared summary, as on the summary page; else
        -- the variant the history points at.
        select s.from_cache, s.variant into known, v_kept from user_summaries s
         where s.org_id = p_org and s.video_id = p_video;
        select o.summary::text as summary, o.model, o.prompt_version, o.built_in into own
          from own_transcript_summaries o
         where o.org_id = p_org and o.video_id = p_video;
        if found then
            return query select 'history'::text, false, true, 'Your pasted transcript'::text, null::text,
                null::integer, null::text, own.summary, own.model, own.prompt_version, own.built_in,
                null::integer, null::integer, null::timestamptz, null::integer;
            return;
        end if;
        if v_kept is distinct from v_variant then
            select vi.title, vi.channel, vi.duration_seconds, vi.thumbnail_url, vi.summary::text as summary,
                   vi.model, vi.prompt_version, vi.built_in, vi.language
              into h
              from videos vi
             where vi.video_id = p_video and vi.variant = v_kept and vi.status = 'ready'
               and vi.summary is not null;
            if found then
                v := h;
            end if;
        end if;
        return query select 'history'::text, coalesce(known, true), false, v.title, v.channel,
            v.duration_seconds, v.thumbnail_url, v.summary, v.model, v.prompt_version, v.built_in,
            null::integer, null::integer, null::timestamptz, null::integer;
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

    insert into usage_records (org_id, id, user_id, video_id, variant, period_start, status, settled_at)
    values (p_org, gen_random_uuid(), p_user, p_video, coalesce(v_wanted, ''), period, 'succeeded', now());

    return query select 'charged'::text, true, false, v.title, v.channel, v.duration_seconds,
        v.thumbnail_url, v.summary, v.model, v.prompt_version, v.built_in,
        null::integer, null::integer, null::timestamptz, null::integer;
end
$$;

revoke execute on function serve_ready_summary(uuid, uuid, text, jsonb, integer, text) from public;
grant execute on function serve_ready_summary(uuid, uuid, text, jsonb, integer, text) to tldw_app;
