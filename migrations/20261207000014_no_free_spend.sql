-- No free model spend (issue 12, item 2; security review findings 2 and 13).
--
-- A summary that fails after the model already billed tokens is charged,
-- not refunded: otherwise a failure that an attacker can provoke (an empty
-- answer to a prompt injection, a dropped connection) is an unlimited loop
-- of paid model calls that nobody pays for. Such a unit ends as 'charged':
-- the counter keeps it, no history row is written, and `billed_tokens`
-- says what the attempt cost upstream.
alter table usage_records drop constraint usage_records_status_check;
alter table usage_records add constraint usage_records_status_check
    check (status in ('reserved', 'succeeded', 'refunded', 'charged'));
alter table usage_records add column billed_tokens bigint check (billed_tokens >= 0);

-- Pasted-transcript work runs in the background with no row in the shared
-- cache to hold a lease on, so its reservation carries its own heartbeat:
-- while `work_expires_at` is in the future the work is alive and the
-- abandoned-reservation sweep leaves the unit alone (before, a dropped
-- connection cancelled the work and the sweep then refunded the unit the
-- model had already been paid for).
alter table usage_records add column work_expires_at timestamptz;
