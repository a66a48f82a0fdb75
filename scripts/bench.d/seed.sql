-- scripts/bench's data, loaded as the owner role (tldw_owner) after every
-- bench token has made its first request (which created its account, org and
-- membership). psql variables: videos, orgs, history.
-- Prints one line per bench org: n, slug, org id, users.id, account id, role.
set client_min_messages = error;
select set_config('bench.orgs', :'orgs', false), set_config('bench.history', :'history', false),
       set_config('bench.videos', :'videos', false) \g /dev/null

-- The shared cache: ready videos bv000000001…, named so that an integer maps
-- to an id in SQL ('bv' || lpad(n::text, 9, '0')).
insert into videos (video_id, status, title, channel, duration_seconds, thumbnail_url, language, summary,
                    model, prompt_version, built_in, prompt_tokens, completion_tokens, cost_micros,
                    attempt, stage, created_at, updated_at, completed_at)
select id, 'ready',
       format('Bench video %s: how distributed caches really work, and when they do not', n),
       format('Bench Channel %s', n % 97),
       dur,
       format('https://i.ytimg.com/vi/%s/hqdefault.jpg', id),
       'en',
       jsonb_build_object(
           'tldr', format('In this %s-minute talk the speaker explains how a shared cache in front of a '
                          'slow, expensive service pays for itself: what to key it on, how to keep two '
                          'workers from doing the same work, how long to remember failures, and the three '
                          'mistakes teams make when they first put one in production (video %s).', dur / 60, n),
           'key_points', (select jsonb_agg(jsonb_build_object(
                              'text', format('Point %s: a concrete, one-sentence takeaway about caching, leases '
                                             'and retries that the viewer can act on without watching the '
                                             'whole section again.', k),
                              'at_seconds', k * dur / 7) order by k)
                          from generate_series(1, 6) k)),
       'gpt-4o-mini', 'summary-v3', false, 9000 + n % 7000, 450 + n % 300, 1600 + n % 1300,
       1, 'done', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
from (select n, 'bv' || lpad(n::text, 9, '0') as id, 240 + (n * 37) % 3300 as dur
      from generate_series(1, :videos) n) v;

create temp table bench_orgs (n int primary key, slug text, org_id uuid, user_id uuid, account_id uuid, role text);

-- Per org: its quota counter and ledger for this period, and `history` rows
-- of history. FORCE RLS binds the owner too, so each org is entered through
-- app.org_id, like the app does.
do $$
declare
    orgs    int := current_setting('bench.orgs')::int;
    history int := current_setting('bench.history')::int;
    videos  int := current_setting('bench.videos')::int;
    org     uuid;
    member  users%rowtype;
    ent     record;
    org_slug text;
begin
    for n in 1..orgs loop
        org_slug := 'bench-' || lpad(n::text, 4, '0');
        org := org_id_by_slug(org_slug);
        if org is null then
            raise exception 'org % was not created by its token''s first request', org_slug;
        end if;
        perform set_config('app.org_id', org::text, true);
        select * into strict member from users where org_id = org;
        insert into bench_orgs values (n, org_slug, org, member.id, member.account_id, member.role);
        select * into strict ent from org_entitlement(org);
        insert into usage_counters (org_id, period_start, period_end, used)
            values (org, ent.period_start, ent.period_end, history);
        insert into user_summaries (org_id, id, user_id, video_id, title, from_cache, created_at)
            select org, gen_random_uuid(), member.id, v.video_id, v.title, i % 5 <> 0,
                   now() - make_interval(hours => i)
            from generate_series(1, history) i
            join videos v on v.video_id = 'bv' || lpad(((n * 7919 + i * 197) % videos + 1)::text, 9, '0')
            on conflict (org_id, video_id) do nothing;
        insert into usage_records (org_id, id, user_id, video_id, period_start, status, created_at, settled_at)
            select org, gen_random_uuid(), member.id, s.video_id, ent.period_start, 'succeeded',
                   s.created_at, s.created_at
            from user_summaries s where s.org_id = org;
    end loop;
end
$$;

analyze;
select n, slug, org_id, user_id, account_id, role from bench_orgs order by n;
