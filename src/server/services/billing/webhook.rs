//! Dodo webhooks: verify, record, apply — exactly once in effect, and never
//! letting an older event overwrite newer state.
//!
//! The ledger row (keyed by `webhook-id`, `INSERT … ON CONFLICT DO NOTHING`)
//! and the effect commit in one transaction. A duplicate, sequential or
//! concurrent, in one process or several, finds the row (a concurrent one
//! waits on the key until the first commits) and changes nothing; if the
//! first attempt dies before committing, neither the row nor the effect
//! exists and the redelivery applies once.
//!
//! Subscription state comes from the event's object (Dodo sends the latest
//! state) and is applied only when the event is not older than the last one
//! applied (`subscriptions.last_event_at`), in one conditional upsert.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use std::fmt;

use super::{Billing, DodoBilling};
use crate::{
    domain::{OrgId, PlanId},
    error::AppError,
    server::{
        clients::dodo::{Dispute, DodoError, Payment, Refund, Subscription, SubscriptionStatus},
        db::{TenantScope, TenantTx},
        webhooks::event::{Envelope, EventObject, OrgKeys},
    },
};

/// What became of a delivery; the word is the ledger's `outcome` and the
/// acknowledgement's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Subscription state changed.
    Applied,
    /// A payment went into the org's history.
    Recorded,
    /// Older than the state we hold: recorded, not applied.
    Stale,
    /// About a subscription the org has since replaced with a live one.
    Superseded,
    /// A product we do not sell: recorded and logged, no plan change.
    UnknownProduct,
    /// No org we know: recorded and logged, no org touched.
    UnknownCustomer,
    /// The event's customer is not the one we created for the org: recorded
    /// and logged, not applied (the portal and plan belong to the org's own
    /// customer only).
    CustomerMismatch,
    /// A second live subscription for an org that already has one: recorded
    /// and logged loudly (both may bill), the first one is kept.
    DuplicateSubscription,
    /// A type we do not act on (or data we cannot read): recorded.
    Ignored,
    /// This `webhook-id` was already processed: nothing happened now.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Recorded => "recorded",
            Outcome::Stale => "stale",
            Outcome::Superseded => "superseded",
            Outcome::UnknownProduct => "unknown_product",
            Outcome::UnknownCustomer => "unknown_customer",
            Outcome::CustomerMismatch => "customer_mismatch",
            Outcome::DuplicateSubscription => "duplicate_subscription",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database failure while handling a delivery: 503, so Dodo retries.
fn unavailable(error: sqlx::Error) -> AppError {
    tracing::error!(error = %error, "webhook: database error; Dodo will retry");
    AppError::Unavailable("The database is unavailable; please retry.".into())
}

impl Billing {
    /// Handles one delivery of `POST /webhooks/dodo`: the raw body and its
    /// headers. 4xx for what retrying cannot fix (signature, malformed
    /// body), 503 for what it can (database), 2xx otherwise.
    #[tracing::instrument(name = "webhook.dodo", skip_all, fields(webhook_id = tracing::field::Empty, event_type = tracing::field::Empty, outcome = tracing::field::Empty))]
    pub async fn receive_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Outcome, AppError> {
        let dodo = self.dodo.as_ref().ok_or_else(|| {
            AppError::Unavailable(
                "Billing is not configured on this server (DODO_PAYMENTS_WEBHOOK_KEY).".into(),
            )
        })?;
        let verified = dodo
            .config
            .webhooks
            .verify(headers, body, Utc::now().timestamp())
            .map_err(|error| AppError::Refused(format!("Webhook rejected: {error}.")))?;
        let span = tracing::Span::current();
        span.record("webhook_id", verified.id.as_str());
        let event = Envelope::parse(body)
            .map_err(|error| AppError::BadRequest(format!("Webhook rejected: {error}.")))?;
        span.record("event_type", event.event_type.as_str());
        let outcome = self.process(dodo, &verified.id, event).await?;
        span.record("outcome", outcome.as_str());
        match outcome {
            Outcome::UnknownCustomer => tracing::error!(
                webhook_id = %verified.id,
                "webhook for a customer, subscription or checkout we never stored; no org was changed"
            ),
            Outcome::UnknownProduct => tracing::error!(
                webhook_id = %verified.id,
                "webhook for a product no plan sells (check DODO_PAYMENTS_PRODUCT_*); no plan was changed"
            ),
            Outcome::CustomerMismatch => tracing::error!(
                webhook_id = %verified.id,
                alert = "billing_customer_mismatch",
                "webhook names a customer other than the one we created for its org; recorded, not applied"
            ),
            _ => tracing::info!("webhook processed"),
        }
        Ok(outcome)
    }

    async fn process(
        &self,
        dodo: &DodoBilling,
        webhook_id: &str,
        mut event: Envelope,
    ) -> Result<Outcome, AppError> {
        // Doubt (data we cannot read) is settled by asking Dodo, before any
        // transaction opens: no transaction waits on the network.
        if let EventObject::SubscriptionToFetch { subscription_id } = &event.object {
            event.object = match dodo.client.get_subscription(subscription_id).await {
                Ok(subscription) => EventObject::Subscription(Box::new(subscription)),
                Err(DodoError::NotFound) => EventObject::Other { unreadable: true },
                Err(error) => {
                    tracing::warn!(%error, "could not fetch the subscription an event names");
                    return Err(AppError::Unavailable(
                        "Dodo could not be asked about this subscription; please retry.".into(),
                    ));
                }
            };
        }
        let keys = match &event.object {
            EventObject::Subscription(subscription) => Some(OrgKeys::of_subscription(subscription)),
            EventObject::Payment(payment) => Some(OrgKeys::of_payment(payment)),
            EventObject::Refund(refund) => Some(OrgKeys::of_refund(refund)),
            EventObject::Dispute(dispute) => Some(OrgKeys::of_dispute(dispute)),
            _ => None,
        };
        let org = match &keys {
            Some(keys) => self.org_for(keys).await?,
            None => None,
        };
        let Some(org) = org else {
            let outcome = if keys.is_some() {
                Outcome::UnknownCustomer
            } else {
                Outcome::Ignored
            };
            return self.record_without_org(webhook_id, &event, outcome).await;
        };

        let mut tx = self
            .db
            .tenant(TenantScope::org(org))
            .await
            .map_err(unavailable)?;
        if !insert_ledger(tx.conn(), webhook_id, &event, "processing").await? {
            return Ok(Outcome::Duplicate);
        }
        let customer = keys.as_ref().and_then(|k| k.customer_id.as_deref());
        let outcome = if foreign_customer(&mut tx, customer).await? {
            Outcome::CustomerMismatch
        } else {
            match &event.object {
                EventObject::Subscription(subscription) => {
                    apply_subscription(&mut tx, dodo, &event, subscription).await?
                }
                EventObject::Payment(payment) => record_payment(&mut tx, &event, payment).await?,
                EventObject::Refund(refund) => record_refund(&mut tx, &event, refund).await?,
                EventObject::Dispute(dispute) => record_dispute(&mut tx, &event, dispute).await?,
                _ => Outcome::Ignored,
            }
        };
        sqlx::query("update webhook_events set outcome = $2 where webhook_id = $1")
            .bind(webhook_id)
            .bind(outcome.as_str())
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "insert into billing_events (org_id, webhook_id, event_type, occurred_at, outcome)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(org.as_uuid())
        .bind(webhook_id)
        .bind(&event.event_type)
        .bind(event.occurred_at)
        .bind(outcome.as_str())
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
        if self
            .crash_before_commit
            .as_ref()
            .is_some_and(|crash| crash(webhook_id))
        {
            // Tests: the process "dies" here; dropping the transaction rolls
            // back the ledger row and the effect together.
            drop(tx);
            return Err(AppError::Unavailable(
                "Injected crash before commit.".into(),
            ));
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(outcome)
    }

    /// The org an event belongs to, from ids we stored (see the migration's
    /// `billing_org_for`).
    async fn org_for(&self, keys: &OrgKeys) -> Result<Option<OrgId>, AppError> {
        let mut tx = self.db.shared().await.map_err(unavailable)?;
        if let Some(payment) = &keys.payment_id {
            let org: Option<uuid::Uuid> = sqlx::query_scalar("select billing_org_for_payment($1)")
                .bind(payment)
                .fetch_one(tx.conn())
                .await
                .map_err(unavailable)?;
            if let Some(org) = org {
                tx.commit().await.map_err(unavailable)?;
                return Ok(Some(OrgId::from_uuid(org)));
            }
        }
        let org: Option<uuid::Uuid> = sqlx::query_scalar("select billing_org_for($1, $2, $3, $4)")
            .bind(keys.subscription_id.as_deref())
            .bind(keys.checkout_ref)
            .bind(keys.checkout_session_id.as_deref())
            .bind(keys.customer_id.as_deref())
            .fetch_one(tx.conn())
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(org.map(OrgId::from_uuid))
    }

    async fn record_without_org(
        &self,
        webhook_id: &str,
        event: &Envelope,
        outcome: Outcome,
    ) -> Result<Outcome, AppError> {
        let mut tx = self.db.shared().await.map_err(unavailable)?;
        let inserted = insert_ledger(tx.conn(), webhook_id, event, outcome.as_str()).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(if inserted {
            outcome
        } else {
            Outcome::Duplicate
        })
    }
}

/// Claims the `webhook-id` in the caller's transaction; false when it is
/// already there (a duplicate). A concurrent first delivery holds the key
/// until it commits or rolls back, so this waits for it rather than guessing.
async fn insert_ledger(
    conn: &mut sqlx::PgConnection,
    webhook_id: &str,
    event: &Envelope,
    outcome: &str,
) -> Result<bool, AppError> {
    let inserted = sqlx::query(
        "insert into webhook_events (webhook_id, event_type, occurred_at, payload, outcome)
         values ($1, $2, $3, $4, $5) on conflict (webhook_id) do nothing",
    )
    .bind(webhook_id)
    .bind(&event.event_type)
    .bind(event.occurred_at)
    .bind(&event.payload)
    .bind(outcome)
    .execute(conn)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(inserted == 1)
}

/// The plan a subscription in this state entitles to: the product's plan
/// while it is live (active, on hold until the period ends, cancelled at the
/// period end), Free once it is over (cancelled now, expired, failed) or not
/// yet paid (pending).
fn entitled_plan(subscription: &Subscription, product_plan: PlanId) -> PlanId {
    match subscription.status {
        SubscriptionStatus::Active | SubscriptionStatus::OnHold => product_plan,
        SubscriptionStatus::Cancelled if subscription.cancel_at_next_billing_date => product_plan,
        _ => PlanId::Free,
    }
}

async fn apply_subscription(
    tx: &mut TenantTx,
    dodo: &DodoBilling,
    event: &Envelope,
    subscription: &Subscription,
) -> Result<Outcome, AppError> {
    let Some(product_plan) = dodo.config.plan_for_product(&subscription.product_id) else {
        return Ok(Outcome::UnknownProduct);
    };
    let plan = entitled_plan(subscription, product_plan);
    let org = tx.org_id();
    if plan != PlanId::Free
        && let Some(existing) = other_live_subscription(tx, &subscription.subscription_id).await?
    {
        // Both subscriptions bill; replacing the first would hide it (and a
        // later cancellation of either would flip the org). Keep the first,
        // record this one, and tell a person.
        tracing::error!(
            alert = "duplicate_subscription",
            org = %org,
            kept = %existing,
            duplicate = %subscription.subscription_id,
            customer = %subscription.customer.customer_id,
            "a second live Dodo subscription for an org that already has one; both may be billing: cancel one in Dodo's dashboard"
        );
        return Ok(Outcome::DuplicateSubscription);
    }
    // One conditional upsert: applied only when this event is not older than
    // the last applied one, and (for another subscription of the same org)
    // only when it is live or the org's current one is not.
    let applied: Option<i32> = sqlx::query_scalar(
        "insert into subscriptions as s (org_id, plan, source, status, dodo_subscription_id,
                 dodo_customer_id, product_id, period_start, period_end, cancel_at_period_end,
                 last_event_at, updated_at)
         values ($1, $2, 'dodo', $3, $4, $5, $6, $7, $8, $9, $10, now())
         on conflict (org_id) do update set
             plan = excluded.plan, source = 'dodo', status = excluded.status,
             dodo_subscription_id = excluded.dodo_subscription_id,
             dodo_customer_id = excluded.dodo_customer_id,
             product_id = excluded.product_id, period_start = excluded.period_start,
             period_end = excluded.period_end,
             cancel_at_period_end = excluded.cancel_at_period_end,
             last_event_at = excluded.last_event_at, updated_at = now()
         where (s.last_event_at is null or s.last_event_at <= excluded.last_event_at)
           and (s.dodo_subscription_id is not distinct from excluded.dodo_subscription_id
                or excluded.plan <> 'free' or s.plan = 'free')
         returning 1",
    )
    .bind(org.as_uuid())
    .bind(plan.as_str())
    .bind(subscription.status.as_str())
    .bind(&subscription.subscription_id)
    .bind(&subscription.customer.customer_id)
    .bind(&subscription.product_id)
    .bind(subscription.previous_billing_date)
    .bind(period_end(subscription))
    .bind(subscription.cancel_at_next_billing_date)
    .bind(event.occurred_at)
    .fetch_optional(tx.conn())
    .await
    .map_err(unavailable)?;
    if applied.is_none() {
        let current: Option<String> =
            sqlx::query_scalar("select dodo_subscription_id from subscriptions where org_id = $1")
                .bind(org.as_uuid())
                .fetch_optional(tx.conn())
                .await
                .map_err(unavailable)?
                .flatten();
        return Ok(
            if current.as_deref() == Some(subscription.subscription_id.as_str()) {
                Outcome::Stale
            } else {
                Outcome::Superseded
            },
        );
    }
    if plan != PlanId::Free
        && let Some(checkout) = OrgKeys::of_subscription(subscription).checkout_ref
    {
        sqlx::query(
            "update checkout_sessions set completed_at = coalesce(completed_at, now()),
                 is_open = false
             where org_id = $1 and id = $2",
        )
        .bind(org.as_uuid())
        .bind(checkout)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
    }
    Ok(Outcome::Applied)
}

/// The org's current Dodo subscription when it is another one than
/// `subscription_id` and still holds a paid plan (running, on hold, or
/// paid until its period ends). Locks the row: a concurrent first event of
/// either subscription waits for this decision.
async fn other_live_subscription(
    tx: &mut TenantTx,
    subscription_id: &str,
) -> Result<Option<String>, AppError> {
    let existing: Option<String> = sqlx::query_scalar(
        "select dodo_subscription_id from subscriptions
         where org_id = $1 and source = 'dodo' and plan <> 'free'
           and dodo_subscription_id is distinct from $2
           and (status in ('active', 'on_hold') or period_end > now())
         for update",
    )
    .bind(tx.org_id().as_uuid())
    .bind(subscription_id)
    .fetch_optional(tx.conn())
    .await
    .map_err(unavailable)?
    .flatten();
    Ok(existing)
}

/// Whether the event's customer differs from the one we created for the
/// org (orgs that subscribed before we created customers have none stored:
/// nothing to compare).
async fn foreign_customer(tx: &mut TenantTx, customer: Option<&str>) -> Result<bool, AppError> {
    let Some(customer) = customer else {
        return Ok(false);
    };
    let stored: Option<String> =
        sqlx::query_scalar("select dodo_customer_id from billing_customers where org_id = $1")
            .bind(tx.org_id().as_uuid())
            .fetch_optional(tx.conn())
            .await
            .map_err(unavailable)?;
    Ok(stored.is_some_and(|stored| stored != customer))
}

/// Dodo's period end; a malformed one (not after the start) becomes a day
/// after the start rather than breaking the row's check.
fn period_end(subscription: &Subscription) -> DateTime<Utc> {
    if subscription.next_billing_date > subscription.previous_billing_date {
        subscription.next_billing_date
    } else {
        subscription.previous_billing_date + chrono::Duration::days(1)
    }
}

async fn record_payment(
    tx: &mut TenantTx,
    event: &Envelope,
    payment: &Payment,
) -> Result<Outcome, AppError> {
    let recorded: Option<i32> = sqlx::query_scalar(
        "insert into payments as p (org_id, payment_id, status, total_amount, currency,
                 subscription_id, error_message, occurred_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (org_id, payment_id) do update set
             -- A refund outranks any later word about the payment itself.
             status = case when p.refund_status = 'succeeded' then p.status else excluded.status end,
             total_amount = excluded.total_amount,
             currency = excluded.currency, error_message = excluded.error_message,
             occurred_at = excluded.occurred_at, recorded_at = now()
         where p.occurred_at <= excluded.occurred_at
         returning 1",
    )
    .bind(tx.org_id().as_uuid())
    .bind(&payment.payment_id)
    .bind(&payment.status)
    .bind(payment.total_amount)
    .bind(payment.currency.as_deref())
    .bind(payment.subscription_id.as_deref())
    .bind(payment.error_message.as_deref())
    .bind(event.occurred_at)
    .fetch_optional(tx.conn())
    .await
    .map_err(unavailable)?;
    Ok(if recorded.is_some() {
        Outcome::Recorded
    } else {
        Outcome::Stale
    })
}

/// Refunds: the payment row says so (`refunded`, or `partially_refunded`),
/// and a person is alerted. The plan is left to Dodo: the reference
/// documents no effect of a refund on the subscription, whose own events
/// (`subscription.cancelled`, `on_hold`, …) are what change the plan here.
/// A full refund of a running subscription is an operator's call (cancel it
/// in Dodo's dashboard if service should end), hence the alert.
async fn record_refund(
    tx: &mut TenantTx,
    event: &Envelope,
    refund: &Refund,
) -> Result<Outcome, AppError> {
    let status = refund.status.as_deref().unwrap_or("succeeded");
    let payment_status = match (status, refund.is_partial) {
        ("succeeded", false) => Some("refunded"),
        ("succeeded", true) => Some("partially_refunded"),
        _ => None,
    };
    let recorded = adjust_payment(
        tx,
        event,
        &refund.payment_id,
        payment_status,
        Some((status, refund.amount)),
        None,
    )
    .await?;
    if status == "succeeded" {
        tracing::error!(
            alert = "refund",
            org = %tx.org_id(),
            refund_id = %refund.refund_id,
            payment_id = %refund.payment_id,
            partial = refund.is_partial,
            amount = refund.amount,
            "a payment was refunded; the plan stays as Dodo's subscription says: cancel it in Dodo if service should end"
        );
    }
    Ok(recorded)
}

/// Disputes (chargebacks): the payment row carries the dispute's status and
/// a person is alerted when one opens or is lost. As with refunds the plan
/// follows the subscription's own events.
async fn record_dispute(
    tx: &mut TenantTx,
    event: &Envelope,
    dispute: &Dispute,
) -> Result<Outcome, AppError> {
    let status = dispute
        .dispute_status
        .clone()
        .unwrap_or_else(|| event.event_type.replace('.', "_"));
    let recorded =
        adjust_payment(tx, event, &dispute.payment_id, None, None, Some(&status)).await?;
    tracing::error!(
        alert = "dispute",
        org = %tx.org_id(),
        dispute_id = %dispute.dispute_id,
        payment_id = %dispute.payment_id,
        event_type = %event.event_type,
        status = %status,
        "a payment is disputed; answer it in Dodo's dashboard"
    );
    Ok(recorded)
}

/// Writes a refund's or dispute's word onto its payment row (creating the
/// row when the payment event has not arrived yet), newest event first.
async fn adjust_payment(
    tx: &mut TenantTx,
    event: &Envelope,
    payment_id: &str,
    payment_status: Option<&str>,
    refund: Option<(&str, Option<i64>)>,
    dispute_status: Option<&str>,
) -> Result<Outcome, AppError> {
    let recorded: Option<i32> = sqlx::query_scalar(
        "insert into payments as p (org_id, payment_id, status, occurred_at, refund_status,
                 refunded_amount, dispute_status, adjusted_at)
         values ($1, $2, coalesce($3, 'unknown'), $4, $5, $6, $7, $4)
         on conflict (org_id, payment_id) do update set
             status = coalesce($3, p.status),
             refund_status = coalesce($5, p.refund_status),
             refunded_amount = coalesce($6, p.refunded_amount),
             dispute_status = coalesce($7, p.dispute_status),
             adjusted_at = $4, recorded_at = now()
         where p.adjusted_at is null or p.adjusted_at <= $4
         returning 1",
    )
    .bind(tx.org_id().as_uuid())
    .bind(payment_id)
    .bind(payment_status)
    .bind(event.occurred_at)
    .bind(refund.map(|r| r.0))
    .bind(refund.and_then(|r| r.1))
    .bind(dispute_status)
    .fetch_optional(tx.conn())
    .await
    .map_err(unavailable)?;
    Ok(if recorded.is_some() {
        Outcome::Recorded
    } else {
        Outcome::Stale
    })
}
