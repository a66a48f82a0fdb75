-- Retention (security review finding 17): the sweeper deletes webhook
-- ledger rows past the retry window. The app could only insert and read
-- them so far. Deleting an old ledger row is safe: Dodo retries for days,
-- not weeks, so a duplicate of an event older than 30 days never comes.
grant delete on webhook_events to tldw_app;
create index webhook_events_received_at_idx on webhook_events (received_at);
create index sessions_expires_at_idx on sessions (expires_at);
