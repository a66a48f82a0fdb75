-- Billing: what each org has paid for, as Dodo's webhooks tell us.
--
-- Dodo is the only source of truth for paid plans. Its webhooks arrive
-- duplicated, retried for a day and out of order, so:
--   * webhook_events is the ledger, keyed by webhook-id; a row is written in
--     the same transaction as the event's effect (ON CONFLICT DO NOTHING
--     makes a duplicate a no-op);
--   * subscriptions.last_event_at orders the effects: an event older than the
--     state we hold is recorded but never applied.

-- One row per org that ever had a plan other than the default Free.
--   source dodo:   kept in step with one Dodo subscription by webhooks;
--   source manual: set by an operator (`tldw plan set`) while billing is off.
-- plan is what the org is entitled to while the period runs; terminal states
-- (cancelled now, expired, failed) set it back to free.
create table subscriptions (
    org_id                uuid primary key references orgs (id) on delete cascade,
    plan                  text not null check (plan in ('free', 'pro', 'team')),
    source                text not null check (source in ('dodo', 'manual')),
    status                text not null,
    dodo_subscription_id  text,
    dodo_customer_id      text,
    product_id            text,
    period_start          timestamptz,
    period_end            timestamptz,
    cancel_at_period_end  boolean not null default false,
    -- The envelope timestamp of the newest event applied here.
    last_event_at         timestamptz,
    updated_at            timestamptz not null default now(),
    check (period_end is null or period_end > period_start),
    check (source = 'manual' or (dodo_subscription_id is not null and period_start is not null and period_end is not null))
);
create index subscriptions_dodo_subscription_idx on subscriptions (dodo_subscription_id);
create index subscriptions_dodo_customer_idx on subscriptions (dodo_customer_id);

-- Checkout sessions we created. id is our own reference, sent to Dodo in
-- the session's metadata; it comes back on the subscription, and it is how
-- a first webhook finds its org (a value we stored, not one a client chose).
create table checkout_sessions (
    org_id           uuid not null references orgs (id) on delete cascade,
    id               uuid not null,
    plan             text not null check (plan in ('pro', 'team')),
    created_by       uuid not null,
    dodo_session_id  text,
    created_at       timestamptz not null default now(),
    completed_at     timestamptz,
    primary key (org_id, id),
    foreign key (org_id, created_by) references users (org_id, id) on delete cascade
);
create index checkout_sessions_dodo_session_idx on checkout_sessions (dodo_session_id);

-- The org's payment history, from payment.* events.
create table payments (
    org_id           uuid not null references orgs (id) on delete cascade,
    payment_id       text not null,
    status           text not null,
    total_amount     bigint,
    currency         text,
    subscription_id  text,
    error_message    text,
    occurred_at      timestamptz not null,
    recorded_at      timestamptz not null default now(),
    primary key (org_id, payment_id)
);
create index payments_recent_idx on payments (org_id, occurred_at desc);

-- The org's own view of the ledger (the admin "webhook events" list).
create table billing_events (
    org_id       uuid not null references orgs (id) on delete cascade,
    webhook_id   text not null,
    event_type   text not null,
    occurred_at  timestamptz,
    outcome      text not null,
    received_at  timestamptz not null default now(),
    primary key (org_id, webhook_id)
);
create index billing_events_recent_idx on billing_events (org_id, received_at desc);

-- The ledger. Global, because an event is recorded before (and even when
-- never) an org is known: an event for a customer we do not know still gets
-- a row. No tenant-facing code reads it; orgs see billing_events.
create table webhook_events (
    webhook_id   text primary key check (length(webhook_id) between 1 and 256),
    event_type   text not null,
    occurred_at  timestamptz,
    payload      jsonb not null,
    outcome      text not null,
    received_at  timestamptz not null default now()
);

alter table subscriptions enable row level security;
alter table subscriptions force row level security;
create policy subscriptions_tenant_isolation on subscriptions
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

alter table checkout_sessions enable row level security;
alter table checkout_sessions force row level security;
create policy checkout_sessions_tenant_isolation on checkout_sessions
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

alter table payments enable row level security;
alter table payments force row level security;
create policy payments_tenant_isolation on payments
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

alter table billing_events enable row level security;
alter table billing_events force row level security;
create policy billing_events_tenant_isolation on billing_events
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

grant select, insert, update, delete on subscriptions, checkout_sessions, payments, billing_events to tldw_app;
-- The ledger is append-only for the app: no delete.
grant select, insert, update on webhook_events to tldw_app;

-- Which org a Dodo event belongs to, from ids we stored ourselves: the
-- subscription we track, the checkout reference we sent (metadata), the
-- checkout session Dodo gave us, or the customer we recorded (when it pays
-- for one org only), in that order.
-- Crossing tenants is the point, so it runs as tldw_definer like
-- account_orgs, answers only this, and only tldw_app may call it.
create function billing_org_for(
    p_subscription_id text,
    p_checkout_ref uuid,
    p_checkout_session_id text,
    p_customer_id text
)
returns uuid
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select org_id from (
        select org_id, 1 as rank from public.subscriptions
            where p_subscription_id is not null and dodo_subscription_id = p_subscription_id
        union all
        select org_id, 2 from public.checkout_sessions
            where p_checkout_ref is not null and id = p_checkout_ref
        union all
        select org_id, 3 from public.checkout_sessions
            where p_checkout_session_id is not null and dodo_session_id = p_checkout_session_id
        union all
        -- One Dodo customer (one email) can pay for several orgs: the
        -- customer alone names an org only when it names exactly one.
        select (array_agg(org_id))[1], 4 from public.subscriptions
            where p_customer_id is not null and dodo_customer_id = p_customer_id
            having count(distinct org_id) = 1
    ) found
    order by rank
    limit 1
$$;
grant select on subscriptions, checkout_sessions to tldw_definer;
alter function billing_org_for(text, uuid, text, text) owner to tldw_definer;
revoke execute on function billing_org_for(text, uuid, text, text) from public;
grant execute on function billing_org_for(text, uuid, text, text) to tldw_app;

-- The operator's `tldw plan set --org <slug>` names an org by slug. Only the
-- owner role (which the command connects as) may ask; the app cannot.
create function org_id_by_slug(p_slug text)
returns uuid
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select id from public.orgs where slug = p_slug
$$;
alter function org_id_by_slug(text) owner to tldw_definer;
revoke execute on function org_id_by_slug(text) from public;
grant execute on function org_id_by_slug(text) to current_user;

-- What an org is entitled to right now, by the database clock:
--   * manual plans and Free: the calendar month (UTC);
--   * a Dodo plan: Dodo's billing period. Active past its end (the renewal
--     webhook is late) keeps the plan and starts the period Dodo will
--     report; on hold or cancelled-at-period-end keep it until the end.
create function org_entitlement(p_org uuid)
returns table (plan text, period_start timestamptz, period_end timestamptz)
language sql stable
set search_path = pg_catalog, public
as $$
    with month as (
        select date_trunc('month', now() at time zone 'utc') at time zone 'utc' as start
    ),
    paid as (
        select s.plan,
               case when s.source = 'manual' then null
                    when now() < s.period_end then s.period_start
                    else s.period_end end as period_start,
               case when s.source = 'manual' then null
                    when now() < s.period_end then s.period_end
                    else s.period_end + (s.period_end - s.period_start) end as period_end
        from public.subscriptions s
        where s.org_id = p_org
          and s.plan <> 'free'
          and (s.source = 'manual'
               or now() < s.period_end
               or (s.status = 'active' and not s.cancel_at_period_end))
    )
    select coalesce(paid.plan, 'free'),
           coalesce(paid.period_start, month.start),
           coalesce(paid.period_end, month.start + interval '1 month')
    from month left join paid on true
$$;
grant execute on function org_entitlement(uuid) to tldw_app;
