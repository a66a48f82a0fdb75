//! What the billing pages show. Dates and amounts arrive as words, so the
//! browser never needs a clock or currency code of its own.

use serde::{Deserialize, Serialize};

use super::{Plan, PlanId, QuotaView};

/// Everything the billing page shows for one org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingOverview {
    pub plans: Vec<Plan>,
    /// The plan in force now (what the quota applies).
    pub current: PlanId,
    pub quota: QuotaView,
    /// `None` for an org that never had a plan other than Free.
    pub subscription: Option<SubscriptionView>,
    /// Dodo is configured: checkout and the portal work.
    pub billing_enabled: bool,
    /// Owners and admins: may start checkout, change plans, open the portal
    /// and see the webhook events.
    pub can_manage: bool,
    pub payments: Vec<PaymentView>,
    /// Only for those who may manage billing.
    pub events: Vec<BillingEventView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubscriptionView {
    /// The plan the subscription is for (may differ from `current` once it
    /// has lapsed).
    pub plan: PlanId,
    /// Set by an operator (`tldw plan set`) rather than paid through Dodo.
    pub manual: bool,
    /// Dodo's status: active, on_hold, cancelled, …
    pub status: String,
    /// "December 30, 2026": when the paid period ends.
    pub period_end: Option<String>,
    pub cancel_at_period_end: bool,
    /// A Dodo customer exists: the portal can be opened.
    pub has_portal: bool,
    /// A live Dodo subscription: plan changes go through Dodo's change-plan
    /// rather than a new checkout.
    pub live: bool,
    /// A paid period still runs (perhaps cancelling): no new checkout; the
    /// portal resumes or changes it.
    pub paid_period_running: bool,
    /// Words for a banner: payment failed, ending at period end, …
    pub warning: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PaymentView {
    pub payment_id: String,
    /// "2026-11-30"
    pub date: String,
    /// "$12.00 USD"
    pub amount: String,
    pub status: String,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingEventView {
    /// "2026-11-30 14:03:07 UTC"
    pub received: String,
    pub event_type: String,
    pub outcome: String,
}

/// Where a checkout stands, as the return page polls it. Nothing here is
/// taken from the return URL's query string: only webhooks move it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutProgress {
    /// Dodo has not told us about the payment yet.
    Waiting,
    /// The subscription webhook landed; the org is on `plan`.
    Confirmed { plan: PlanId },
}

/// Minor units and a currency code as words: "$12.00 USD", "1,500 JPY".
pub fn format_amount(minor_units: i64, currency: &str) -> String {
    let currency = currency.to_ascii_uppercase();
    // Currencies without minor units (ISO 4217 exponent 0) that Dodo sells in.
    let zero_decimal = matches!(currency.as_str(), "JPY" | "KRW" | "VND" | "CLP" | "ISK");
    let sign = if minor_units < 0 { "-" } else { "" };
    let abs = minor_units.unsigned_abs();
    let symbol = match currency.as_str() {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        _ => "",
    };
    if zero_decimal {
        format!("{sign}{symbol}{abs} {currency}")
    } else {
        format!("{sign}{symbol}{}.{:02} {currency}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_money() {
        assert_eq!(format_amount(1200, "usd"), "$12.00 USD");
        assert_eq!(format_amount(5, "EUR"), "€0.05 EUR");
        assert_eq!(format_amount(1500, "JPY"), "1500 JPY");
        assert_eq!(format_amount(-250, "INR"), "-2.50 INR");
    }
}
