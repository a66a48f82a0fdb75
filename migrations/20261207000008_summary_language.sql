-- Summaries in an org's chosen language (issue 10, item 4).
--
-- An org may choose the language its summaries are written in; NULL (the
-- default) means "the video's own language": the language of the caption
-- track we summarized. The choice is a code from a closed set (the same
-- list as `SummaryLanguage` in src/domain/summary_language.rs; a test
-- keeps the two equal), never free text.
alter table orgs add column summary_language text
    check (summary_language in ('en', 'es', 'fr', 'de', 'it', 'pt', 'nl', 'pl', 'ru', 'uk', 'tr', 'ar', 'hi', 'bn', 'ur', 'id', 'vi', 'th', 'ja', 'ko', 'zh'));

-- The shared cache gets a second key column. variant '' is the summary
-- written in the video's own language, shared by every org that wants
-- that (the common case: one summary per video for everyone). Any other
-- variant is the same video summarized in that language, made only when
-- an org wants a language other than the video's, and shared by every org
-- that wants it. Invariant 1 still holds: a variant is a language code
-- from the closed set below, not a prompt or anything a tenant wrote, and
-- the row still holds no org and no user. Single flight, leases, fencing
-- and cool-downs work per (video_id, variant) row exactly as they did per
-- video.
alter table user_summaries drop constraint user_summaries_video_id_fkey;
alter table videos add column variant text not null default ''
    check (variant in ('', 'en', 'es', 'fr', 'de', 'it', 'pt', 'nl', 'pl', 'ru', 'uk', 'tr', 'ar', 'hi', 'bn', 'ur', 'id', 'vi', 'th', 'ja', 'ko', 'zh'));
alter table videos drop constraint videos_pkey;
alter table videos add primary key (video_id, variant);

-- The history row points at the summary the org got (its variant).
alter table user_summaries add column variant text not null default '';
alter table user_summaries add constraint user_summaries_video_variant_fkey
    foreign key (video_id, variant) references videos (video_id, variant);

-- A reservation remembers the language the org wanted when it asked ('' =
-- the video's own), so whoever settles it (the request, or the sweeper
-- after a crash) looks at the right cache rows: the '' row, then, if that
-- one turned out to be in another language, the (video, language) row.
alter table usage_records add column variant text not null default ''
    check (variant in ('', 'en', 'es', 'fr', 'de', 'it', 'pt', 'nl', 'pl', 'ru', 'uk', 'tr', 'ar', 'hi', 'bn', 'ur', 'id', 'vi', 'th', 'ja', 'ko', 'zh'));

-- The one-statement cache hit, now language-aware. Same signature and
-- same columns as before (so callers and benchmarks replay the very same
-- statement); what changed is which cache row it serves:
--   * it reads the org's summary_language itself (a primary-key lookup of
--     the org's own row, visible in the tenant transaction: no new round
--     trip);
--   * no preference, or the '' row was written by the built-in summarizer
--     (which cannot translate), or the '' row's language already is the
--     preferred one -> the '' row, exactly as before;
--   * otherwise the (video, preference) row when it is ready, else 'miss'
--     (the lease path makes that variant);
--   * a video already in the org's history is served from the variant the
--     history points at (reopening is free and shows what the org got).
-- Everything else (throttle, history, quota, ledger, lock order) is as in
-- 20261207000007_hot_path.sql.
create or replace function serve_ready_summary(
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

-- The sweeper's cross-tenant scan, now per variant: a reservation is
-- abandoned once it is older than a lease and no cache row it may be
-- waiting on (the '' row, and its language's row) is being worked on
-- under a lease that is live or expired less than a lease ago.
create or replace function orgs_with_abandoned_reservations(p_lease_seconds float8)
returns table (org_id uuid)
language sql stable security definer
set search_path = pg_catalog, public
as $fn$
    select distinct r.org_id
    from public.usage_records r
    where r.status = 'reserved'
      and r.created_at < now() - make_interval(secs => p_lease_seconds)
      and not exists (
          select from public.videos v
          where v.video_id = r.video_id and v.variant in ('', r.variant)
            and v.status = 'pending'
            and v.lease_expires_at > now() - make_interval(secs => p_lease_seconds))
    limit 100
$fn$;
