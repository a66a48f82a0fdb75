//! The plans an organization can be on. The pricing table renders from this
//! one list; billing (Dodo product ids, configured limits) builds on it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanId {
    Free,
    Pro,
    Team,
}

impl PlanId {
    pub const ALL: [PlanId; 3] = [PlanId::Free, PlanId::Pro, PlanId::Team];

    pub fn as_str(self) -> &'static str {
        match self {
            PlanId::Free => "free",
            PlanId::Pro => "pro",
            PlanId::Team => "team",
        }
    }

    pub fn parse(value: &str) -> Option<PlanId> {
        PlanId::ALL
            .into_iter()
            .find(|plan| plan.as_str().eq_ignore_ascii_case(value.trim()))
    }
}

/// What a plan offers, as shown to customers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    pub tagline: String,
    /// Summaries an organization may request per billing period.
    pub monthly_summaries: u32,
    /// Price per month in US cents; 0 for Free.
    pub monthly_price_cents: u32,
    pub features: Vec<String>,
}

impl Plan {
    /// The built-in catalogue, used until billing configuration overrides it.
    pub fn defaults() -> Vec<Plan> {
        vec![
            Plan {
                id: PlanId::Free,
                name: "Free".into(),
                tagline: "Try tldw with your team".into(),
                monthly_summaries: 10,
                monthly_price_cents: 0,
                features: vec![
                    "10 summaries a month".into(),
                    "Shared summary cache".into(),
                    "Unlimited members".into(),
                ],
            },
            Plan {
                id: PlanId::Pro,
                name: "Pro".into(),
                tagline: "For people who learn from video every day".into(),
                monthly_summaries: 200,
                monthly_price_cents: 1200,
                features: vec![
                    "200 summaries a month".into(),
                    "Timestamped key points".into(),
                    "Paste your own transcripts".into(),
                ],
            },
            Plan {
                id: PlanId::Team,
                name: "Team".into(),
                tagline: "For teams that share what they watch".into(),
                monthly_summaries: 1000,
                monthly_price_cents: 4900,
                features: vec![
                    "1,000 summaries a month".into(),
                    "Roles and invitations".into(),
                    "Priority summarization".into(),
                ],
            },
        ]
    }

    /// "$12" or "$0": whole dollars when there are no cents.
    pub fn display_price(&self) -> String {
        let dollars = self.monthly_price_cents / 100;
        match self.monthly_price_cents % 100 {
            0 => format!("${dollars}"),
            cents => format!("${dollars}.{cents:02}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_every_plan_once_in_order() {
        let ids: Vec<PlanId> = Plan::defaults().iter().map(|p| p.id).collect();
        assert_eq!(ids, PlanId::ALL.to_vec());
    }

    #[test]
    fn parses_plan_names_case_insensitively() {
        assert_eq!(PlanId::parse(" Pro "), Some(PlanId::Pro));
        assert_eq!(PlanId::parse("enterprise"), None);
    }

    #[test]
    fn formats_prices() {
        let mut plan = Plan::defaults().remove(1);
        assert_eq!(plan.display_price(), "$12");
        plan.monthly_price_cents = 1999;
        assert_eq!(plan.display_price(), "$19.99");
    }
}
