-- Data that outlives a member, and billing boundaries (issue 12 items 4 and 5;
-- security review findings 4, 5, 7, 11, 18e and 18f).
--
-- Note on existing rows: this migration runs as the owner role, which FORCE
-- binds to the tenant policies, so it cannot read or update tenant rows.
-- Every change below is therefore DDL, or a column whose default fits the
-- rows already there.

-- 1. Removing a member keeps the org's data (finding 4).
-- History, private pasted-transcript summaries, the usage ledger and the
-- checkout references belong to the org, not to the member who made them.
-- The member column becomes nullable and is set to NULL when the member row
-- goes; `former_member` keeps who it was (their email at removal), filled by
-- the trigger below, so the org still sees "Former member: bob@…".
alter table user_summaries alter column user_id drop not null,
    add column former_member text check (length(former_member) <= 254);
alter table user_summaries drop constraint user_summaries_org_id_user_id_fkey,
    add constraint user_summaries_org_id_user_id_fkey foreign key (org_id, user_id)
        references users (org_id, id) on delete set null (user_id);

alter table own_transcript_summaries alter column user_id drop not null,
    add column former_member text check (length(former_member) <= 254);
alter table own_transcript_summaries drop constraint own_transcript_summaries_org_id_user_id_fkey,
    add constraint own_transcript_summaries_org_id_user_id_fkey foreign key (org_id, user_id)
        references users (org_id, id) on delete set null (user_id);

alter table usage_records alter column user_id drop not null,
    add column former_member text check (length(former_member) <= 254);
alter table usage_records drop constraint usage_records_org_id_user_id_fkey,
    add constraint usage_records_org_id_user_id_fkey foreign key (org_id, user_id)
        references users (org_id, id) on delete set null (user_id);

alter table checkout_sessions alter column created_by drop not null,
    add column former_member text check (length(former_member) <= 254);
alter table checkout_sessions drop constraint checkout_sessions_org_id_created_by_fkey,
    add constraint checkout_sessions_org_id_created_by_fkey foreign key (org_id, created_by)
        references users (org_id, id) on delete set null (created_by);

-- Finding 18e: an org with no other owner (Clerk orgs have none) re-homed
-- a removed inviter's invitations to NULL, which the NOT NULL refused (500).
-- The invitation stays valid with no inviter on record.
alter table invitations alter column invited_by drop not null;
alter table invitations drop constraint invitations_org_id_invited_by_fkey,
    add constraint invitations_org_id_invited_by_fkey foreign key (org_id, invited_by)
        references users (org_id, id) on delete set null (invited_by);

-- Fills `former_member` before a member row goes, whatever removes it (an
-- admin, leaving, a Clerk webhook, an account deletion). It runs as the
-- caller, under the caller's RLS: the removal happens in the org's tenant
-- transaction. When the whole org is being deleted its rows go too, so
-- nothing is written. An account already gone (deleted first) has no email
-- left to keep: the rows then just say "former member".
create function users_keep_former_member() returns trigger
language plpgsql
set search_path = pg_catalog, public
as $$
declare
    label text;
begin
    if not exists (select from public.orgs where id = old.org_id) then
        return old;
    end if;
    select a.email into label from public.accounts a where a.id = old.account_id;
    update public.user_summaries set former_member = label
        where org_id = old.org_id and user_id = old.id;
    update public.own_transcript_summaries set former_member = label
        where org_id = old.org_id and user_id = old.id;
    update public.usage_records set former_member = label
        where org_id = old.org_id and user_id = old.id;
    update public.checkout_sessions set former_member = label
        where org_id = old.org_id and created_by = old.id;
    return old;
end
$$;
create trigger users_keep_former_member before delete on users
    for each row execute function users_keep_former_member();

-- 2. One Dodo customer per org (finding 5).
-- Created for the org (`POST /customers`) at its first checkout and stored
-- here before the checkout session is made; every checkout passes it as
-- `customer: {customer_id}`, the portal only ever opens it, and a webhook
-- whose customer differs is recorded, not applied. Unique both ways: an org
-- has one customer and a customer pays for one org, so the customer alone
-- names an org.
create table billing_customers (
    org_id            uuid primary key references orgs (id) on delete cascade,
    dodo_customer_id  text not null unique check (length(dodo_customer_id) between 1 and 128),
    created_at        timestamptz not null default now()
);
alter table billing_customers enable row level security;
alter table billing_customers force row level security;
create policy billing_customers_tenant_isolation on billing_customers
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));
grant select, insert, update, delete on billing_customers to tldw_app;

-- 3. At most one open checkout per org (finding 11).
-- `is_open` holds the org's one slot from the moment a checkout is started
-- (before Dodo is asked, so concurrent starts queue on the unique index
-- instead of each creating a session) until it completes, fails to be
-- created, or expires; the open session's URL is handed out again within
-- its validity. Rows from before this migration default to false: they
-- hold no slot.
alter table checkout_sessions
    add column is_open boolean not null default false,
    add column checkout_url text,
    add column expires_at timestamptz;
create unique index checkout_sessions_one_open_idx on checkout_sessions (org_id) where is_open;

-- 4. Refunds and disputes (finding 18f) land on the payment they are about.
alter table payments
    add column refund_status text,
    add column refunded_amount bigint,
    add column dispute_status text,
    add column adjusted_at timestamptz;

-- billing_org_for, rank 4, now also finds an org by the customer stored for
-- it (unique, so exactly one). The old rank (the customer on a subscription
-- row, when it names one org) stays for orgs that subscribed before.
create or replace function billing_org_for(
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
        select org_id, 4 from public.billing_customers
            where p_customer_id is not null and dodo_customer_id = p_customer_id
        union all
        select (array_agg(org_id))[1], 5 from public.subscriptions
            where p_customer_id is not null and dodo_customer_id = p_customer_id
            having count(distinct org_id) = 1
    ) found
    order by rank
    limit 1
$$;
grant select on billing_customers to tldw_definer;

-- A refund or dispute names the payment it is about; its org is the one
-- whose history holds that payment (an id we stored from a verified
-- payment webhook). Crossing tenants is the point, like billing_org_for.
create function billing_org_for_payment(p_payment_id text)
returns uuid
language sql stable security definer
set search_path = pg_catalog, public
as $$
    select (array_agg(org_id))[1] from public.payments
        where p_payment_id is not null and payment_id = p_payment_id
        having count(distinct org_id) = 1
$$;
grant select on payments to tldw_definer;
alter function billing_org_for_payment(text) owner to tldw_definer;
revoke execute on function billing_org_for_payment(text) from public;
grant execute on function billing_org_for_payment(text) to tldw_app;
