//! The plans an organization can be on. The pricing table renders from this
//! one list; billing (Dodo product ids, configured limits) builds on it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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

    /// The plan's name as customers see it.
    pub fn label(self) -> &'static str {
        match self {
            PlanId::Free => "Free",
            PlanId::Pro => "Pro",
            PlanId::Team => "Team",
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
    /// A plan with its words: the first feature always states the limit, so
    /// a configured limit can never disagree with the pricing table.
    pub fn new(id: PlanId, monthly_summaries: u32, monthly_price_cents: u32) -> Plan {
        let (tagline, extras): (&str, [&str; 2]) = match id {
            PlanId::Free => (
                "Try tldw with your team",
                ["Shared summary cache", "Unlimited members"],
            ),
            PlanId::Pro => (
                "For people who learn from video every day",
                ["Timestamped key points", "Paste your own transcripts"],
            ),
            PlanId::Team => (
                "For teams that share what they watch",
                ["Roles and invitations", "Priority summarization"],
            ),
        };
        let mut features = vec![format!(
            "{} summaries a month",
            group_thousands(monthly_summaries)
        )];
        features.extend(extras.iter().map(|s| (*s).to_owned()));
        Plan {
            id,
            name: id.label().into(),
            tagline: tagline.into(),
            monthly_summaries,
            monthly_price_cents,
            features,
        }
    }

    /// The built-in catalogue, used where configuration does not say otherwise.
    pub fn defaults() -> Vec<Plan> {
        PlanCatalog::default().plans().to_vec()
    }

    /// "$12" or "$0": whole dollars when there are no cents.
    pub fn display_price(&self) -> String {
        let dollars = self.monthly_price_cents / 100;
        match self.monthly_price_cents % 100 {
            0 => format!("${dollars}"),
            cents => format!("${dollars}.{cents:02}"),
        }
    }

    pub fn is_paid(&self) -> bool {
        self.id != PlanId::Free
    }
}

/// "1,000" for 1000.
fn group_thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Every plan exactly once, in `PlanId::ALL` order: the one source the
/// pricing table, the billing page and the quota read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCatalog(Vec<Plan>);

impl Default for PlanCatalog {
    fn default() -> Self {
        PlanCatalog(vec![
            Plan::new(PlanId::Free, 10, 0),
            Plan::new(PlanId::Pro, 200, 1200),
            Plan::new(PlanId::Team, 1000, 4900),
        ])
    }
}

impl PlanCatalog {
    /// Replaces one plan's limit and price (configuration).
    pub fn with(mut self, id: PlanId, monthly_summaries: u32, monthly_price_cents: u32) -> Self {
        let plan = Plan::new(id, monthly_summaries, monthly_price_cents);
        if let Some(slot) = self.0.iter_mut().find(|p| p.id == id) {
            *slot = plan;
        }
        self
    }

    pub fn plans(&self) -> &[Plan] {
        &self.0
    }

    pub fn get(&self, id: PlanId) -> &Plan {
        self.0
            .iter()
            .find(|p| p.id == id)
            .expect("a catalog holds every plan")
    }

    /// The plan's limit as the database counts it.
    pub fn limit(&self, id: PlanId) -> i32 {
        i32::try_from(self.get(id).monthly_summaries).unwrap_or(i32::MAX)
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
    fn catalog_overrides_keep_the_limit_in_the_words() {
        let catalog = PlanCatalog::default().with(PlanId::Pro, 2500, 1999);
        let pro = catalog.get(PlanId::Pro);
        assert_eq!(pro.features[0], "2,500 summaries a month");
        assert_eq!(catalog.limit(PlanId::Pro), 2500);
        assert_eq!(
            catalog.get(PlanId::Team).features[0],
            "1,000 summaries a month"
        );
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn formats_prices() {
        let mut plan = Plan::defaults().remove(1);
        assert_eq!(plan.display_price(), "$12");
        plan.monthly_price_cents = 1999;
        assert_eq!(plan.display_price(), "$19.99");
    }
}
