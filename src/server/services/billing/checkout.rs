//! Paying: Dodo checkout sessions, plan changes and the customer portal, for
//! owners and admins; and the return page's question "has it landed?".

use chrono::{DateTime, Utc};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use uuid::Uuid;

use super::{Billing, DodoBilling, SubscriptionRow, db_error, subscription_row};
use crate::{
    domain::{CheckoutProgress, Permission, PlanId},
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        clients::dodo::{
            CheckoutCustomer, CheckoutRequest, DodoError, NewCustomer, ProrationBillingMode,
        },
        webhooks::event::CHECKOUT_REF_KEY,
    },
};

/// The checkout return page's path for a checkout we created.
fn return_path(slug: &str, checkout: Uuid) -> String {
    format!("/o/{slug}/billing/return?checkout={checkout}")
}

fn dodo_unavailable(error: DodoError) -> AppError {
    match error {
        DodoError::Unauthorized | DodoError::Invalid(_) | DodoError::BadResponse(_) => {
            tracing::error!(%error, "Dodo Payments refused or misunderstood a request");
            AppError::Unavailable(
                "Our payment provider could not handle that request. Please try again later or contact support.".into(),
            )
        }
        other => {
            tracing::warn!(error = %other, "Dodo Payments unavailable");
            AppError::Unavailable(
                "Our payment provider is not answering right now. Please try again in a minute."
                    .into(),
            )
        }
    }
}

/// How long the org's one open checkout is handed out again. Dodo keeps a
/// session payable for 24 h; an hour is long enough for a buyer to finish
/// (and for two tabs or a double submit to land on the same session), and
/// short enough that a member who changes their mind about the plan is not
/// held for a day. The older session stays payable at Dodo until its own
/// end: a second subscription that comes of it is caught by the webhook
/// (`duplicate_subscription`).
const OPEN_FOR: Duration = Duration::from_secs(60 * 60);
/// How long a checkout being created holds the slot before it is presumed
/// dead (its process died between the slot and Dodo's answer): longer than
/// two Dodo calls with their retries can take.
const CREATING_LEASE: Duration = Duration::from_secs(3 * 60);
/// How long a concurrent start waits for the session another request is
/// creating before it answers "try again".
const WAIT_FOR_CREATOR: Duration = Duration::from_secs(20);

/// What a start finds in the org's checkout slot.
enum Slot {
    /// We hold it: create the session under this reference.
    Ours(Uuid),
    /// An open session for the same plan: hand out its URL again.
    Reuse(String),
    /// Another request is creating a session right now.
    Creating,
}

impl Billing {
    /// Starts paying for `plan`: holds the org's one checkout slot, makes
    /// sure the org has its own Dodo customer, creates a Dodo checkout
    /// session for it carrying our reference, and returns where to send the
    /// buyer. Concurrent starts for the same plan get the same session.
    /// Owners and admins only. `origin` is our public origin, for the return
    /// URL.
    #[tracing::instrument(skip(self, member, origin), fields(org = %member.org.id, plan = plan.as_str()))]
    pub async fn start_checkout(
        &self,
        member: &CurrentMember,
        plan: PlanId,
        origin: &str,
    ) -> Result<String, AppError> {
        member.require(Permission::ManageBilling)?;
        let dodo = self.dodo()?;
        let product = dodo
            .config
            .product(plan)
            .ok_or_else(|| AppError::BadRequest("The Free plan needs no checkout.".into()))?;
        let email = member.account.email.as_ref().ok_or_else(|| {
            AppError::BadRequest(
                "Your account has no email address, which the payment provider needs for receipts."
                    .into(),
            )
        })?;
        let waiting_since = Instant::now();
        let mut pause = Duration::from_millis(50);
        let checkout = loop {
            match self.take_slot(member, plan).await? {
                Slot::Ours(checkout) => break checkout,
                Slot::Reuse(url) => return Ok(url),
                Slot::Creating if waiting_since.elapsed() < WAIT_FOR_CREATOR => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Slot::Creating => {
                    return Err(AppError::InProgress {
                        retry_after_seconds: 5,
                    });
                }
            }
        };
        let created = async {
            let customer = self.org_customer(dodo, member, &email.to_string()).await?;
            let request = CheckoutRequest {
                product_id: product.to_owned(),
                quantity: 1,
                customer: CheckoutCustomer::Existing {
                    customer_id: customer,
                },
                return_url: format!(
                    "{}{}",
                    origin.trim_end_matches('/'),
                    return_path(&member.org.slug, checkout)
                ),
                metadata: BTreeMap::from([
                    (CHECKOUT_REF_KEY.to_owned(), checkout.to_string()),
                    ("tldw_org".to_owned(), member.org.id.to_string()),
                ]),
            };
            dodo.client
                .create_checkout(&request)
                .await
                .map_err(dodo_unavailable)
        }
        .await;
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        match created {
            Ok(session) => {
                sqlx::query(
                    "update checkout_sessions
                     set dodo_session_id = $3, checkout_url = $4,
                         expires_at = created_at + make_interval(secs => $5)
                     where org_id = $1 and id = $2",
                )
                .bind(member.org.id.as_uuid())
                .bind(checkout)
                .bind(&session.session_id)
                .bind(&session.checkout_url)
                .bind(OPEN_FOR.as_secs_f64())
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(session.checkout_url)
            }
            Err(error) => {
                // Free the slot so the next attempt can try again.
                sqlx::query(
                    "update checkout_sessions set is_open = false where org_id = $1 and id = $2",
                )
                .bind(member.org.id.as_uuid())
                .bind(checkout)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Err(error)
            }
        }
    }

    /// One transaction: refuses when the org already pays, frees a slot
    /// whose time is up, then takes the slot (the partial unique index on
    /// open checkouts makes a concurrent taker wait for this one's commit,
    /// then find it taken) or reports what holds it.
    async fn take_slot(&self, member: &CurrentMember, plan: PlanId) -> Result<Slot, AppError> {
        let org = member.org.id.as_uuid();
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        if let Some(current) = subscription_row(&mut tx).await? {
            if current.live() {
                return Err(AppError::Conflict(
                    "This organization already has a subscription. Change plans from the billing page, or manage it in the billing portal.".into(),
                ));
            }
            if current.paid_period_running() {
                return Err(AppError::Conflict(
                    "This organization's subscription is paid until the end of its period. To keep it or change it, open the billing portal (Manage billing) instead of buying a second one.".into(),
                ));
            }
        }
        sqlx::query(
            "update checkout_sessions set is_open = false
             where org_id = $1 and is_open and expires_at <= now()",
        )
        .bind(org)
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
        let checkout = Uuid::new_v4();
        let taken: Option<Uuid> = sqlx::query_scalar(
            "insert into checkout_sessions (org_id, id, plan, created_by, is_open, expires_at)
             values ($1, $2, $3, $4, true, now() + make_interval(secs => $5))
             on conflict (org_id) where is_open do nothing
             returning id",
        )
        .bind(org)
        .bind(checkout)
        .bind(plan.as_str())
        .bind(member.org.user_id.as_uuid())
        .bind(CREATING_LEASE.as_secs_f64())
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        if taken.is_some() {
            tx.commit().await.map_err(db_error)?;
            return Ok(Slot::Ours(checkout));
        }
        let open: Option<(String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "select plan, checkout_url, expires_at from checkout_sessions
             where org_id = $1 and is_open",
        )
        .bind(org)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(match open {
            // Freed between our insert and this read: take it next round.
            None => Slot::Creating,
            Some((_, None, _)) => Slot::Creating,
            Some((open_plan, Some(url), _)) if open_plan == plan.as_str() => Slot::Reuse(url),
            Some((open_plan, Some(_), until)) => {
                let name = PlanId::parse(&open_plan)
                    .map(|p| self.plans.get(p).name.clone())
                    .unwrap_or(open_plan);
                return Err(AppError::Conflict(format!(
                    "A checkout for {name} is already open for this organization. Finish it, or choose another plan after {} UTC.",
                    until.format("%H:%M")
                )));
            }
        })
    }

    /// The org's own Dodo customer: the stored one, or a new one created for
    /// the org and stored now (only the holder of the checkout slot gets
    /// here, so two are never created at once).
    async fn org_customer(
        &self,
        dodo: &DodoBilling,
        member: &CurrentMember,
        email: &str,
    ) -> Result<String, AppError> {
        let org = member.org.id.as_uuid();
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let stored: Option<String> =
            sqlx::query_scalar("select dodo_customer_id from billing_customers where org_id = $1")
                .bind(org)
                .fetch_optional(tx.conn())
                .await
                .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        if let Some(customer) = stored {
            return Ok(customer);
        }
        let created = dodo
            .client
            .create_customer(&NewCustomer {
                email: email.to_owned(),
                name: member.org.name.clone(),
                metadata: BTreeMap::from([("tldw_org".to_owned(), member.org.id.to_string())]),
            })
            .await
            .map_err(dodo_unavailable)?;
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let stored =
            sqlx::query("insert into billing_customers (org_id, dodo_customer_id) values ($1, $2)")
                .bind(org)
                .bind(&created.customer_id)
                .execute(tx.conn())
                .await;
        match stored {
            Ok(_) => {
                tx.commit().await.map_err(db_error)?;
                Ok(created.customer_id)
            }
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                // Dodo answered with a customer that already pays for another
                // org (one per email?): using it would open that org's
                // billing to this one's admins.
                tracing::error!(
                    alert = "billing_customer_reused",
                    customer_id = %created.customer_id,
                    "Dodo returned a customer already stored for another organization; refusing the checkout"
                );
                Err(AppError::Unavailable(
                    "Our payment provider could not set up a separate billing account for this organization. Please contact support.".into(),
                ))
            }
            Err(error) => Err(db_error(error)),
        }
    }

    /// Moves a live subscription to another paid plan through Dodo. The
    /// `subscription.plan_changed` webhook is what changes the limit.
    #[tracing::instrument(skip(self, member), fields(org = %member.org.id, plan = plan.as_str()))]
    pub async fn change_plan(&self, member: &CurrentMember, plan: PlanId) -> Result<(), AppError> {
        member.require(Permission::ManageBilling)?;
        let dodo = self.dodo()?;
        let current = self
            .subscription(member)
            .await?
            .filter(SubscriptionRow::live);
        let Some(current) = current else {
            return Err(AppError::Conflict(
                "This organization has no running subscription to change; choose a plan to subscribe.".into(),
            ));
        };
        if current.plan == plan.as_str() {
            return Err(AppError::Conflict(format!(
                "This organization is already on {}.",
                self.plans.get(plan).name
            )));
        }
        let Some(product) = dodo.config.product(plan) else {
            return Err(AppError::BadRequest(
                "To move to Free, cancel the subscription in the billing portal; it stays active until the period ends.".into(),
            ));
        };
        let subscription_id = current
            .dodo_subscription_id
            .as_deref()
            .ok_or(AppError::Internal)?;
        dodo.client
            .change_plan(
                subscription_id,
                product,
                ProrationBillingMode::ProratedImmediately,
            )
            .await
            .map_err(dodo_unavailable)
    }

    /// A link to Dodo's customer portal for the org's customer.
    #[tracing::instrument(skip(self, member, origin), fields(org = %member.org.id))]
    pub async fn portal(&self, member: &CurrentMember, origin: &str) -> Result<String, AppError> {
        member.require(Permission::ManageBilling)?;
        let dodo = self.dodo()?;
        // Only ever the customer created for this org (see `subscription_row`:
        // never one a webhook named, which could be a payer shared with other
        // orgs), and only once the org has a subscription to manage.
        let customer = self
            .subscription(member)
            .await?
            .filter(|row| row.source == "dodo")
            .and_then(|row| row.dodo_customer_id)
            .ok_or_else(|| {
                AppError::NotFound(
                    "billing account for this organization (subscribe to a plan first)".into(),
                )
            })?;
        let back = format!(
            "{}/o/{}/billing",
            origin.trim_end_matches('/'),
            member.org.slug
        );
        dodo.client
            .customer_portal(&customer, Some(&back))
            .await
            .map_err(dodo_unavailable)
    }

    /// Whether the webhook for a checkout we created has landed. Reads our
    /// own state only; the return URL's query string grants nothing.
    pub async fn checkout_progress(
        &self,
        member: &CurrentMember,
        checkout: Uuid,
    ) -> Result<CheckoutProgress, AppError> {
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let row: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "select plan, completed_at from checkout_sessions where org_id = $1 and id = $2",
        )
        .bind(member.org.id.as_uuid())
        .bind(checkout)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        match row {
            None => Err(AppError::NotFound("checkout".into())),
            Some((_, None)) => Ok(CheckoutProgress::Waiting),
            Some((plan, Some(_))) => Ok(CheckoutProgress::Confirmed {
                plan: PlanId::parse(&plan).unwrap_or(PlanId::Free),
            }),
        }
    }
}
