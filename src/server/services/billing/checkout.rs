//! Paying: Dodo checkout sessions, plan changes and the customer portal, for
//! owners and admins; and the return page's question "has it landed?".

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{Billing, SubscriptionRow, db_error, subscription_row};
use crate::{
    domain::{CheckoutProgress, Permission, PlanId},
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        clients::dodo::{CheckoutRequest, DodoError, ProrationBillingMode},
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

impl Billing {
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
        let email = member.account.email.as_ref().ok_or_else(|| {
            AppError::BadRequest(
                "Your account has no email address, which the payment provider needs for receipts."
                    .into(),
            )
        })?;
        // The check and our reference row share one transaction.
        let checkout = Uuid::new_v4();
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
}
