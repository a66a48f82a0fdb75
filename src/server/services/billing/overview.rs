//! The billing page's data: plan, period and usage, the subscription in
//! words, payments and (for those who manage billing) webhook events.

use chrono::{DateTime, Utc};

use super::{Billing, db_error, subscription_row};
use crate::{
    domain::{
        BillingEventView, BillingOverview, Permission, PlanId, SubscriptionView,
        billing::format_amount,
    },
    error::AppError,
    server::{auth::identity::CurrentMember, services::quota},
};

#[derive(sqlx::FromRow)]
struct PaymentRow {
    payment_id: String,
    status: String,
    total_amount: Option<i64>,
    currency: Option<String>,
    error_message: Option<String>,
    occurred_at: DateTime<Utc>,
}

impl Billing {
    /// The billing page.
    pub async fn overview(&self, member: &CurrentMember) -> Result<BillingOverview, AppError> {
        let can_manage = member.role().allows(Permission::ManageBilling);
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let quota = quota::status(&mut tx, &self.plans).await?;
        let org = member.org.id.as_uuid();
        let row = subscription_row(&mut tx).await?;
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
                paid_period_running: row.paid_period_running(),
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
            quota: quota.view(),
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
}
