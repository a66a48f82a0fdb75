-- Account lifecycle (issue 12): email verification, password reset and
-- change of email for built-in accounts.

-- When the account proved it reads mail at `email`. NULL: not proved yet.
-- An unverified account keeps its personal org but may not join an org by
-- invitation (security review, finding 10).
--
-- Existing accounts at migration time:
-- - Clerk accounts count as verified: Clerk verified the address before
--   issuing a token, and they have no built-in way to verify here.
-- - Built-in accounts stay unverified. Nothing here tells the address's
--   owner from someone who squatted it, and the cost of being unverified is
--   small: everything they have keeps working, and only accepting a new
--   invitation asks for one click on a link (the account page sends it).
--   A squatted address is recovered with "Forgot password?", which mails
--   the real owner, proves the address and ends the squatter's sessions.
alter table accounts add column email_verified_at timestamptz;
update accounts set email_verified_at = created_at where clerk_user_id is not null;

-- Single-use links mailed to an account: verify an email, reset a
-- password, confirm a new email. Global like accounts (a person uses them
-- before any org is chosen; the catalog lint allow-lists the table by
-- name). Only the SHA-256 of the link's random token is stored, so a leaked
-- table cannot be replayed as links.
create table account_tokens (
    token_hash   bytea primary key check (length(token_hash) = 32),
    account_id   uuid not null references accounts (id) on delete cascade,
    purpose      text not null check (purpose in ('verify_email', 'reset_password', 'change_email')),
    -- The address the link was mailed to. Verifying applies only while the
    -- account still has that address; a change of email sets it.
    email        text not null check (email = lower(email) and length(email) between 3 and 254),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    -- Set when the link is used (or superseded by a newer one of the same
    -- purpose); a used row stays until it expires so that a second use can
    -- be told "already used" rather than "unknown".
    used_at      timestamptz
);
create index account_tokens_account_idx on account_tokens (account_id, purpose);
-- The purge walks expired rows.
create index account_tokens_expires_idx on account_tokens (expires_at);

grant select, insert, update, delete on account_tokens to tldw_app;
