-- Live updates (issue 11): every open dashboard and billing page of an org
-- refetches when that org's numbers move, whichever app process moved them.
--
-- Triggers, not calls in the services, because rows change on many roads
-- (the services, the SQL function serve_ready_summary, the webhooks, the
-- sweeper, `tldw plan set`) and a trigger is on all of them. NOTIFY is
-- delivered at commit and only then, so a rolled-back reservation announces
-- nothing, and identical payloads in one transaction are sent once.
--
-- The payload is `<org id> <kind>` and nothing else: it reaches every
-- process's listener, whatever org its streams belong to, so it carries no
-- tenant data. Subscribers refetch through the normal RLS-checked reads.
--   usage   the quota counter, the ledger (the meter, cards, chart) or the
--           plan's limit moved;
--   history the org's list of summaries changed;
--   billing the subscription, a payment or the webhook log changed.
--
-- SECURITY INVOKER (the default, spelled out): the function reads only the
-- row it is given and calls pg_notify, which any role may; it runs inside
-- the caller's tenant transaction and needs no rights of its own.
create function notify_org_change()
returns trigger
language plpgsql security invoker
as $$
declare
    v_org  uuid;
    v_kind text;
begin
    if tg_op = 'DELETE' then
        v_org := old.org_id;
    else
        v_org := new.org_id;
    end if;
    foreach v_kind in array tg_argv loop
        perform pg_catalog.pg_notify('tldw_org_events', v_org::text || ' ' || v_kind);
    end loop;
    return null;
end
$$;

-- Row triggers fire only for rows actually written: a reopened summary
-- (`insert … on conflict do nothing` that inserts nothing) and the
-- per-minute throttle (rate_limits, not a tenant table) notify nobody, so
-- the cached hot path pays nothing.
create trigger usage_counters_live after insert or update or delete on usage_counters
    for each row execute function notify_org_change('usage');
create trigger usage_records_live after insert or update or delete on usage_records
    for each row execute function notify_org_change('usage');
create trigger user_summaries_live after insert or update or delete on user_summaries
    for each row execute function notify_org_change('history');
create trigger own_transcript_summaries_live after insert or update or delete on own_transcript_summaries
    for each row execute function notify_org_change('history');
-- A plan change moves the limit as well as the billing page.
create trigger subscriptions_live after insert or update or delete on subscriptions
    for each row execute function notify_org_change('billing', 'usage');
create trigger payments_live after insert or update or delete on payments
    for each row execute function notify_org_change('billing');
create trigger billing_events_live after insert or update or delete on billing_events
    for each row execute function notify_org_change('billing');

revoke execute on function notify_org_change() from public;
