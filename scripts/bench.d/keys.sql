-- scripts/bench's API keys for the GET phase, loaded as the owner role
-- (tldw_owner) after seed.sql. Reads from psql's stdin one line per org:
-- slug, prefix, hex SHA-256 of the secret (the script made the secrets and
-- keeps them; only the hash reaches the database, as the app stores it).
-- Prints one line per org: slug and its history videos, comma-separated,
-- read back from user_summaries so the GETs ask only for what is there.
set client_min_messages = error;

create temp table bench_keys (slug text primary key, prefix text not null, secret_hash text not null);
\copy bench_keys from pstdin
create temp table bench_history (slug text primary key, videos text not null);

-- FORCE RLS binds the owner too, so each org is entered through app.org_id.
-- A member key made by the org's one user (admin or member, never owner):
-- reading a summary needs no more.
do $$
declare
    k       record;
    org     uuid;
    creator uuid;
begin
    for k in select * from bench_keys order by slug loop
        org := org_id_by_slug(k.slug);
        if org is null then
            raise exception 'no org %', k.slug;
        end if;
        perform set_config('app.org_id', org::text, true);
        select id into strict creator from users where org_id = org;
        insert into api_keys (org_id, id, name, role, created_by, prefix, secret_hash)
            values (org, gen_random_uuid(), 'bench', 'member', creator, k.prefix, decode(k.secret_hash, 'hex'));
        insert into bench_history
            select k.slug, string_agg(s.video_id, ',' order by s.video_id)
            from user_summaries s
            join videos v on v.video_id = s.video_id and v.variant = s.variant and v.status = 'ready'
            where s.org_id = org
            having count(*) > 0;
    end loop;
end
$$;

analyze api_keys;
select slug, videos from bench_history order by slug;
