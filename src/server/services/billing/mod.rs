//! Billing: what an org pays for, checkout and the customer portal through
//! Dodo Payments, and the webhooks that are the only source of truth for
//! paid plans (see `webhook`).
//!
//! Nothing here grants a plan from what a browser says: checkout only
//! creates a Dodo session; the return page only reads state; webhooks and
//! the operator command (`tldw plan set`) are the only writers.

mod checkout;
mod overview;
mod webhook;

pub use webhook::Outcome;

use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::db_error;
use crate::{
    domain::{PlanCatalog, PlanId},
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        clients::dodo::DodoClient,
        config::DodoBilling as DodoConfig,
        db::{Db, TenantScope, TenantTx},
    },
};

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
    /// The customer we created for the org (`billing_customers`), the only
    /// one its portal opens; not the customer a webhook named.
    dodo_customer_id: Option<String>,
    period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
}

/// The org's subscription row, if it has one.
async fn subscription_row(tx: &mut TenantTx) -> Result<Option<SubscriptionRow>, AppError> {
    let org = tx.org_id();
    sqlx::query_as::<_, SubscriptionRow>(
        "select plan, source, status, dodo_subscription_id,
                (select b.dodo_customer_id from billing_customers b where b.org_id = s.org_id)
                    as dodo_customer_id,
                period_end, cancel_at_period_end
         from subscriptions s where org_id = $1",
    )
    .bind(org.as_uuid())
    .fetch_optional(tx.conn())
    .await
    .map_err(db_error)
}

impl SubscriptionRow {
    /// A Dodo subscription that is still running (plan changes go through it).
    fn live(&self) -> bool {
        self.source == "dodo"
            && self.plan != PlanId::Free.as_str()
            && matches!(self.status.as_str(), "active" | "on_hold")
            && !self.cancel_at_period_end
    }

    /// A Dodo subscription that will charge again unless cancelled: live,
    /// or not yet started (pending) or paused. Deleting the org would leave
    /// it billing nobody we know.
    pub(crate) fn may_bill_again(&self) -> bool {
        self.source == "dodo"
            && matches!(
                self.status.as_str(),
                "active" | "on_hold" | "pending" | "paused"
            )
            && !self.cancel_at_period_end
    }

    /// A paid Dodo period that has not ended, even if the subscription is
    /// cancelling: a second subscription now would bill the org twice.
    fn paid_period_running(&self) -> bool {
        self.source == "dodo"
            && self.plan != PlanId::Free.as_str()
            && self.period_end.is_some_and(|end| end > Utc::now())
    }
}

/// Finding 7: an org whose Dodo subscription would charge again cannot be
/// deleted (its later charges would find no org, and nobody could reach the
/// portal to stop them). We refuse, saying how to cancel, rather than cancel
/// through Dodo ourselves: a cancel call can fail or time out ambiguously
/// after the member confirmed, refunds for the unused period are a policy
/// question for a person, and a refusal keeps the portal (and its invoices)
/// reachable until the owner has settled it. Called inside the delete's
/// transaction, after the org row is locked.
pub(crate) async fn deletion_refused(tx: &mut TenantTx) -> Result<Option<AppError>, AppError> {
    let Some(row) = subscription_row(tx).await? else {
        return Ok(None);
    };
    Ok(row.may_bill_again().then(|| {
        AppError::Conflict(
            "This organization has a paid subscription that will keep charging. Cancel it first: Billing → Manage billing opens the billing portal. Once it is cancelled you can delete the organization.".into(),
        )
    }))
}

fn billing_off() -> AppError {
    AppError::Refused(
        "Billing is off on this server, so plans can't be bought here. An administrator can set a plan with `tldw plan set --org <slug> --plan <plan>`.".into(),
    )
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
        let row = subscription_row(&mut tx).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(row)
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
