//! Billing: what an org pays for, checkout and the customer portal through
//! Dodo Payments, and the webhooks that are the only source of truth for
//! paid plans (see `webhook`).
//!
//! Nothing here grants a plan from what a browser says: checkout only
//! creates a Dodo session; the return page only reads state; webhooks and
//! the operator command (`tldw plan set`) are the only writers.

mod webhook;

pub use webhook::Outcome;

use chrono::{DateTime, Utc};
use std::{collections::BTreeMap, sync::Arc};
use uuid::Uuid;

use super::{db_error, quota};
use crate::{
    domain::{
        BillingEventView, BillingOverview, CheckoutProgress, Permission, PlanCatalog, PlanId,
        QuotaView, SubscriptionView, billing::format_amount,
    },
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        clients::dodo::{CheckoutRequest, DodoClient, DodoError, ProrationBillingMode},
        config::DodoBilling as DodoConfig,
        db::{Db, TenantScope},
        webhooks::event::CHECKOUT_REF_KEY,
    },
};

/// The checkout return page's path for a checkout we created.
pub fn return_path(slug: &str, checkout: Uuid) -> String {
    format!("/o/{slug}/billing/return?checkout={checkout}")
}

/// Tests only: called with each webhook id after the effect and before the
/// commit; `true` makes the delivery "crash" there.
pub type CrashBeforeCommit = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct Billing {
    db: Db,
    plans: Arc<PlanCatalog>,
    dodo: Option<Arc<DodoBilling>>,
    crash_before_commit: Option<CrashBeforeCommit>,
}

/// Dodo's client and what configuration says about it.
struct DodoBilling {
    client: DodoClient,
    config: DodoConfig,
}

/// A subscription row, as the service reads it.
#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    plan: String,
    source: String,
    status: String,
    dodo_subscription_id: Option<String>,
    dodo_customer_id: Option<String>,
    period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    payment_id: String,
    status: String,
    total_amount: Option<i64>,
    currency: Option<String>,
    error_message: Option<String>,
    occurred_at: DateTime<Utc>,
}

impl SubscriptionRow {
    /// A Dodo subscription that is still running (plan changes go through it).
    fn live(&self) -> bool {
        self.source == "dodo"
            && self.plan != PlanId::Free.as_str()
            && matches!(self.status.as_str(), "active" | "on_hold")
            && !self.cancel_at_period_end
    }
}

fn billing_off() -> AppError {
    AppError::Refused(
        "Billing is off on this server, so plans can't be bought here. An administrator can set a plan with `tldw plan set --org <slug> --plan <plan>`.".into(),
    )
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

impl Billing {
    pub fn new(db: Db, plans: PlanCatalog, dodo: Option<DodoConfig>) -> anyhow::Result<Billing> {
        let dodo = dodo
            .map(|config| {
                Ok::<_, anyhow::Error>(Arc::new(DodoBilling {
                    client: DodoClient::new(config.api.clone())?,
                    config,
                }))
            })
            .transpose()?;
        Ok(Billing {
            db,
            plans: Arc::new(plans),
            dodo,
            crash_before_commit: None,
        })
    }

    /// Tests: simulate a process dying between a webhook's effect and its
    /// commit (see [`CrashBeforeCommit`]).
    pub fn with_crash_before_commit(mut self, crash: CrashBeforeCommit) -> Billing {
        self.crash_before_commit = Some(crash);
        self
    }

    pub fn plans(&self) -> &PlanCatalog {
        &self.plans
    }

    pub fn enabled(&self) -> bool {
        self.dodo.is_some()
    }

    fn dodo(&self) -> Result<&DodoBilling, AppError> {
        self.dodo.as_deref().ok_or_else(billing_off)
    }

    async fn subscription(
        &self,
        member: &CurrentMember,
    ) -> Result<Option<SubscriptionRow>, AppError> {
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let row = sqlx::query_as::<_, SubscriptionRow>(
            "select plan, source, status, dodo_subscription_id, dodo_customer_id, period_end,
                    cancel_at_period_end
             from subscriptions where org_id = $1",
        )
        .bind(member.org.id.as_uuid())
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(row)
    }

    /// Starts paying for `plan`: records our checkout reference, creates a
    /// Dodo checkout session carrying it, and returns where to send the
    /// buyer. Owners and admins only. `origin` is our public origin, for the
    /// return URL.
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
        if let Some(current) = self.subscription(member).await?
            && current.live()
        {
            return Err(AppError::Conflict(
                "This organization already has a subscription. Change plans from the billing page, or manage it in the billing portal.".into(),
            ));
        }
        let email = member.account.email.as_ref().ok_or_else(|| {
            AppError::BadRequest(
                "Your account has no email address, which the payment provider needs for receipts."
                    .into(),
            )
        })?;
        let checkout = Uuid::new_v4();
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        sqlx::query(
            "insert into checkout_sessions (org_id, id, plan, created_by) values ($1, $2, $3, $4)",
        )
        .bind(member.org.id.as_uuid())
        .bind(checkout)
        .bind(plan.as_str())
        .bind(member.org.user_id.as_uuid())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        let request = CheckoutRequest {
            product_id: product.to_owned(),
            quantity: 1,
            customer_email: email.to_string(),
            customer_name: Some(member.org.name.clone()),
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
        let session = dodo
            .client
            .create_checkout(&request)
            .await
            .map_err(dodo_unavailable)?;
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        sqlx::query(
            "update checkout_sessions set dodo_session_id = $3 where org_id = $1 and id = $2",
        )
        .bind(member.org.id.as_uuid())
        .bind(checkout)
        .bind(&session.session_id)
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(session.checkout_url)
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
        let customer = self
            .subscription(member)
            .await?
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

    /// The billing page.
    pub async fn overview(&self, member: &CurrentMember) -> Result<BillingOverview, AppError> {
        let can_manage = member.role().allows(Permission::ManageBilling);
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let quota = quota::status(&mut tx, &self.plans).await?;
        let org = member.org.id.as_uuid();
        let row = sqlx::query_as::<_, SubscriptionRow>(
            "select plan, source, status, dodo_subscription_id, dodo_customer_id, period_end,
                    cancel_at_period_end
             from subscriptions where org_id = $1",
        )
        .bind(org)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        let payments: Vec<PaymentRow> = sqlx::query_as(
            "select payment_id, status, total_amount, currency, error_message, occurred_at
             from payments where org_id = $1 order by occurred_at desc limit 24",
        )
        .bind(org)
        .fetch_all(tx.conn())
        .await
        .map_err(db_error)?;
        let events: Vec<(String, String, DateTime<Utc>)> = if can_manage {
            sqlx::query_as(
                "select event_type, outcome, received_at from billing_events
                 where org_id = $1 order by received_at desc limit 50",
            )
            .bind(org)
            .fetch_all(tx.conn())
            .await
            .map_err(db_error)?
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(db_error)?;

        let now = Utc::now();
        let subscription = row.map(|row| {
            let plan = PlanId::parse(&row.plan).unwrap_or(PlanId::Free);
            let ends = row.period_end.map(|end| end.format("%B %-d, %Y").to_string());
            let running = row.period_end.is_some_and(|end| end > now);
            let warning = match (row.status.as_str(), row.cancel_at_period_end, &ends) {
                ("on_hold", _, Some(ends)) if running => Some(format!(
                    "Your last payment failed. The plan stays active until {ends}; update your payment method in the billing portal to keep it."
                )),
                ("on_hold", _, _) => Some(
                    "Your last payment failed and the paid period has ended, so the organization is on the Free plan. Update your payment method in the billing portal.".into(),
                ),
                (_, true, Some(ends)) if running => Some(format!(
                    "The subscription is cancelled and ends on {ends}. After that the organization moves to the Free plan."
                )),
                _ => None,
            };
            SubscriptionView {
                live: row.live(),
                plan,
                manual: row.source == "manual",
                status: row.status,
                period_end: ends,
                cancel_at_period_end: row.cancel_at_period_end,
                has_portal: row.dodo_customer_id.is_some(),
                warning,
            }
        });
        Ok(BillingOverview {
            plans: self.plans.plans().to_vec(),
            current: quota.plan,
            quota: QuotaView {
                plan: quota.plan,
                used: quota.used,
                limit: quota.limit,
                resets_on: quota.resets_at.format("%B %-d").to_string(),
                resets_in_days: (quota.resets_at - now).num_days().max(0) + 1,
            },
            subscription,
            billing_enabled: self.enabled(),
            can_manage,
            payments: payments
                .into_iter()
                .map(|row| crate::domain::PaymentView {
                    payment_id: row.payment_id,
                    date: row.occurred_at.format("%Y-%m-%d").to_string(),
                    amount: match (row.total_amount, row.currency) {
                        (Some(amount), Some(currency)) => format_amount(amount, &currency),
                        _ => "—".into(),
                    },
                    status: row.status,
                    error: row.error_message,
                })
                .collect(),
            events: events
                .into_iter()
                .map(|(event_type, outcome, at)| BillingEventView {
                    received: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    event_type,
                    outcome,
                })
                .collect(),
        })
    }

    /// The operator's `tldw plan set`: puts an org on `plan` by hand (a
    /// calendar-month quota), or back on Free. Meant for billing-off
    /// installs; a later Dodo webhook for the org takes over again.
    pub async fn set_plan_manually(db: &Db, slug: &str, plan: PlanId) -> anyhow::Result<()> {
        let mut shared = db.shared().await?;
        let org: Option<Uuid> = sqlx::query_scalar("select org_id_by_slug($1)")
            .bind(slug)
            .fetch_one(shared.conn())
            .await?;
        shared.commit().await?;
        let org =
            org.ok_or_else(|| anyhow::anyhow!("there is no organization with the slug {slug:?}"))?;
        let mut tx = db
            .tenant(TenantScope::org(crate::domain::OrgId::from_uuid(org)))
            .await?;
        sqlx::query(
            "insert into subscriptions (org_id, plan, source, status, updated_at)
             values ($1, $2, 'manual', 'manual', now())
             on conflict (org_id) do update set plan = excluded.plan, source = 'manual',
                 status = 'manual', dodo_subscription_id = null, product_id = null,
                 period_start = null, period_end = null, cancel_at_period_end = false,
                 updated_at = now()",
        )
        .bind(org)
        .bind(plan.as_str())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
