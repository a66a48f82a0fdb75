-- The SQL floor of the cache hit after issue 15: one transaction in three
-- round trips. The app sends BEGIN and the tenant settings together as one
-- simple query; pgbench cannot prepare two statements as one, so here they
-- share one round trip through a pipeline instead. Then the one prepared
-- statement, then COMMIT.
--
-- scripts/bench runs this with `pgbench -M prepared` as tldw_app. Each run
-- of the script picks one of 100 bench orgs: @ORG@ (the org's uuid) and
-- @USER@ (its member's users.id) become uuid-valued SQL expressions over
-- pgbench variables (pgbench variables are numbers; see make_floor_script
-- in scripts/bench). @LIMITS@ is the plans' JSON limits, e.g.
-- {"free":1000000,"pro":1000000,"team":1000000}; @PER_MINUTE@ the member
-- throttle the app runs with (on, but never reached); :v is a random bench
-- video (bv000000001…), sent as a parameter. Keep this equal to what the
-- app sends.
-- Each client draws from its own residue class of videos (v ≡ client_id + 1
-- mod :clients), so two clients never hold the same (org, video) at once:
-- the app answers such a collision by joining the first request, but here
-- the one-open-reservation index would abort the client.
\set v 1 + :client_id + :clients * random(0, (@VIDEOS@ - 1 - :client_id) / :clients)
\startpipeline
BEGIN;
select set_config('app.org_id', @ORG@::text, true), set_config('app.user_id', @USER@::text, true);
\endpipeline
-- The throttle key is split after each colon: pgbench reads `:member`
-- even inside a string literal as a variable (a parameter the server cannot
-- type, which aborts every client), and `:'` it leaves alone.
select * from serve_ready_summary(@ORG@, @USER@, 'bv' || lpad(:v::text, 9, '0'), '@LIMITS@'::jsonb, @PER_MINUTE@, 'summaries:' || 'member:' || @USER@);
COMMIT;
