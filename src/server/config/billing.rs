//! Plans and Dodo Payments settings.
//!
//! - `TLDW_{FREE,PRO,TEAM}_MONTHLY_SUMMARIES`: each plan's limit;
//! - `TLDW_{PRO,TEAM}_PRICE_CENTS`: the displayed monthly price (US cents);
//! - `DODO_PAYMENTS_API_KEY`: billing is on when set; it then needs
//!   `DODO_PAYMENTS_WEBHOOK_KEY` (a `whsec_…` secret, plus
//!   `DODO_PAYMENTS_WEBHOOK_KEY_PREVIOUS` during a rotation) and a product id
//!   per paid plan (`DODO_PAYMENTS_PRODUCT_PRO`, `DODO_PAYMENTS_PRODUCT_TEAM`);
//! - `DODO_PAYMENTS_ENVIRONMENT` / `DODO_PAYMENTS_BASE_URL`: see the client.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::{
    domain::{PlanCatalog, PlanId},
    server::{
        clients::dodo::DodoSettings,
        webhooks::signature::{WebhookSecret, WebhookVerifier},
    },
};

#[derive(Clone, Debug)]
pub struct BillingSettings {
    pub plans: PlanCatalog,
    /// `None`: billing is off; plans are shown and set by `tldw plan set`.
    pub dodo: Option<DodoBilling>,
}

#[derive(Clone, Debug)]
pub struct DodoBilling {
    pub api: DodoSettings,
    pub webhooks: WebhookVerifier,
    /// The Dodo product sold for each paid plan.
    pub products: BTreeMap<PlanId, String>,
}

impl DodoBilling {
    pub fn product(&self, plan: PlanId) -> Option<&str> {
        self.products.get(&plan).map(String::as_str)
    }

    pub fn plan_for_product(&self, product_id: &str) -> Option<PlanId> {
        self.products
            .iter()
            .find(|(_, product)| product.as_str() == product_id)
            .map(|(plan, _)| *plan)
    }
}

pub(super) fn billing_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<BillingSettings, ConfigError> {
    let mut plans = PlanCatalog::default();
    for id in PlanId::ALL {
        let current = plans.get(id).clone();
        let limit = number(get, limit_var(id), current.monthly_summaries)?;
        let price = match id {
            PlanId::Free => 0,
            _ => number(get, price_var(id), current.monthly_price_cents)?,
        };
        plans = plans.with(id, limit, price);
    }
    let Some(api) = DodoSettings::from_lookup(get).map_err(|reason| ConfigError {
        var: "DODO_PAYMENTS_*",
        reason,
    })?
    else {
        return Ok(BillingSettings { plans, dodo: None });
    };
    let secret = |var: &'static str| -> Result<Option<WebhookSecret>, ConfigError> {
        get(var)
            .map(|value| {
                WebhookSecret::parse(value.trim()).map_err(|error| ConfigError {
                    var,
                    reason: error.to_string(),
                })
            })
            .transpose()
    };
    let current = secret("DODO_PAYMENTS_WEBHOOK_KEY")?.ok_or(ConfigError {
        var: "DODO_PAYMENTS_WEBHOOK_KEY",
        reason: "is required when DODO_PAYMENTS_API_KEY is set (the whsec_… secret of the webhook endpoint)".into(),
    })?;
    let previous = secret("DODO_PAYMENTS_WEBHOOK_KEY_PREVIOUS")?;
    let mut products = BTreeMap::new();
    for id in [PlanId::Pro, PlanId::Team] {
        let var = product_var(id);
        let product = get(var).map(|v| v.trim().to_owned()).ok_or(ConfigError {
            var,
            reason: "is required when DODO_PAYMENTS_API_KEY is set (the pdt_… product sold for this plan)".into(),
        })?;
        if products.values().any(|p| p == &product) {
            return Err(ConfigError {
                var,
                reason: "must differ from the other plans' products".into(),
            });
        }
        products.insert(id, product);
    }
    Ok(BillingSettings {
        plans,
        dodo: Some(DodoBilling {
            api,
            webhooks: WebhookVerifier::new(current, previous),
            products,
        }),
    })
}

fn limit_var(id: PlanId) -> &'static str {
    match id {
        PlanId::Free => "TLDW_FREE_MONTHLY_SUMMARIES",
        PlanId::Pro => "TLDW_PRO_MONTHLY_SUMMARIES",
        PlanId::Team => "TLDW_TEAM_MONTHLY_SUMMARIES",
    }
}

fn price_var(id: PlanId) -> &'static str {
    match id {
        PlanId::Free => "TLDW_FREE_PRICE_CENTS",
        PlanId::Pro => "TLDW_PRO_PRICE_CENTS",
        PlanId::Team => "TLDW_TEAM_PRICE_CENTS",
    }
}

fn product_var(id: PlanId) -> &'static str {
    match id {
        PlanId::Team => "DODO_PAYMENTS_PRODUCT_TEAM",
        _ => "DODO_PAYMENTS_PRODUCT_PRO",
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| ConfigError {
                var,
                reason: format!("expected a whole number, got {v:?}"),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn billing(vars: &[(&str, &str)]) -> Result<BillingSettings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        billing_settings(&|name: &str| vars.get(name).cloned().filter(|v| !v.trim().is_empty()))
    }

    #[test]
    fn billing_is_off_without_an_api_key_and_plans_still_show() {
        let settings = billing(&[("TLDW_PRO_MONTHLY_SUMMARIES", "300")]).unwrap();
        assert!(settings.dodo.is_none());
        assert_eq!(settings.plans.limit(PlanId::Pro), 300);
        assert_eq!(settings.plans.limit(PlanId::Free), 10);
    }

    #[test]
    fn billing_on_needs_the_webhook_key_and_both_products() {
        let missing_key = billing(&[("DODO_PAYMENTS_API_KEY", "k")]).unwrap_err();
        assert_eq!(missing_key.var, "DODO_PAYMENTS_WEBHOOK_KEY");
        let missing_team = billing(&[
            ("DODO_PAYMENTS_API_KEY", "k"),
            ("DODO_PAYMENTS_WEBHOOK_KEY", SECRET),
            ("DODO_PAYMENTS_PRODUCT_PRO", "pdt_pro"),
        ])
        .unwrap_err();
        assert_eq!(missing_team.var, "DODO_PAYMENTS_PRODUCT_TEAM");
        let bad_secret = billing(&[
            ("DODO_PAYMENTS_API_KEY", "k"),
            ("DODO_PAYMENTS_WEBHOOK_KEY", "not-a-secret"),
        ])
        .unwrap_err();
        assert_eq!(bad_secret.var, "DODO_PAYMENTS_WEBHOOK_KEY");
        assert!(!bad_secret.reason.contains("not-a-secret"));
        let on = billing(&[
            ("DODO_PAYMENTS_API_KEY", "k"),
            ("DODO_PAYMENTS_WEBHOOK_KEY", SECRET),
            ("DODO_PAYMENTS_WEBHOOK_KEY_PREVIOUS", SECRET),
            ("DODO_PAYMENTS_PRODUCT_PRO", "pdt_pro"),
            ("DODO_PAYMENTS_PRODUCT_TEAM", "pdt_team"),
        ])
        .unwrap()
        .dodo
        .unwrap();
        assert_eq!(on.plan_for_product("pdt_team"), Some(PlanId::Team));
        assert_eq!(on.product(PlanId::Pro), Some("pdt_pro"));
        assert_eq!(on.plan_for_product("pdt_other"), None);
    }

    #[test]
    fn bad_limits_name_their_variable() {
        let error = billing(&[("TLDW_TEAM_MONTHLY_SUMMARIES", "lots")]).unwrap_err();
        assert_eq!(error.var, "TLDW_TEAM_MONTHLY_SUMMARIES");
    }
}
