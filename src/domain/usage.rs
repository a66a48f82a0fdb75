//! An org's usage: where it stands in the current period, and day by day.
//!
//! What counts as a summary used is what the quota counts: a unit of the
//! ledger (`usage_records`) that was spent (`succeeded`). Units reserved
//! for requests still in flight are in the quota's `used` (the counter
//! moves when a unit is reserved) but in no day yet: until the request
//! settles nobody knows whether it will be spent or refunded, nor whether
//! it will be fresh or cached. So the days of a period may add up to a
//! little less than `used` while summaries are being made, never more.
//!
//! Money, in millionths of a US dollar:
//! * a **fresh** summary (the org's request made it, or waited for it
//!   while it was being made) costs the org the stored cost of the model
//!   call that made the summary the org got (the shared cache row in the
//!   language the org's history points at; for a transcript the org
//!   pasted, that summary's own cost);
//! * a **cached** summary (served from the shared cache, made earlier for
//!   someone) costs the org nothing and saves it the stored cost of the
//!   shared row it was served.
//!
//! Limits of what is stored: the shared row keeps one cost, so when two
//! orgs' requests overlap on one uncached video (one made it while the
//! other waited), both are counted as fresh with its cost; and a transcript
//! pasted again keeps only its latest cost.

use serde::{Deserialize, Serialize};

/// The current period of an org: how much of its quota is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageNow {
    /// Summaries counted against the quota this period, including any being
    /// made right now. After a downgrade it may exceed `limit`.
    pub used: i32,
    /// Summaries the org's plan allows per period.
    pub limit: i32,
    /// `limit - used`, never below zero.
    pub remaining: i32,
    /// When the current period started (RFC 3339, UTC): the start of the
    /// org's paid billing period, or of the calendar month on Free.
    pub period_start: String,
    /// When the current period ends and the quota resets (RFC 3339, UTC).
    pub period_end: String,
    /// The plan's id: `free`, `pro` or `team`.
    pub plan: String,
    /// The plan's name as customers see it.
    pub plan_name: String,
}

/// Summaries used per UTC calendar day over a rolling window that ends
/// today, oldest day first, every day present (zero when nothing was used).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DailyUsage {
    /// One entry per day from `from` to `to`, oldest first.
    pub days: Vec<UsageDay>,
    /// The first day of the window (YYYY-MM-DD, UTC).
    pub from: String,
    /// The last day of the window: today (YYYY-MM-DD, UTC).
    pub to: String,
    /// The sums over every day of the window.
    pub totals: UsageTotals,
}

/// One UTC day of an org's usage. A summary belongs to the day it was
/// requested (as it belongs to the quota period it was reserved in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageDay {
    /// The day (YYYY-MM-DD, UTC).
    pub date: String,
    /// Summaries made for the org that day (its request made the summary or
    /// waited while it was made).
    pub fresh: i32,
    /// Summaries served to the org from the shared cache that day.
    pub cached: i32,
    /// AI spend on the org's fresh summaries that day, in millionths of a
    /// US dollar.
    pub cost_micros: i64,
    /// What the org's cached summaries that day would have cost to make, in
    /// millionths of a US dollar: the stored cost of the shared summaries.
    pub saved_micros: i64,
}

/// Sums over a window of days.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageTotals {
    /// Fresh summaries in the window.
    pub fresh: i32,
    /// Summaries served from the shared cache in the window.
    pub cached: i32,
    /// AI spend in the window, in millionths of a US dollar.
    pub cost_micros: i64,
    /// Saved by the shared cache in the window, in millionths of a US dollar.
    pub saved_micros: i64,
}

impl UsageTotals {
    /// The sums of `days`.
    pub fn of(days: &[UsageDay]) -> UsageTotals {
        days.iter()
            .fold(UsageTotals::default(), |sum, day| UsageTotals {
                fresh: sum.fresh + day.fresh,
                cached: sum.cached + day.cached,
                cost_micros: sum.cost_micros + day.cost_micros,
                saved_micros: sum.saved_micros + day.saved_micros,
            })
    }

    /// Summaries used: fresh and cached.
    pub fn summaries(&self) -> i32 {
        self.fresh + self.cached
    }

    /// The share served from the shared cache, in whole percent (rounded
    /// half up); `None` when nothing was used, so no rate is made up.
    pub fn cache_hit_percent(&self) -> Option<u32> {
        let total = i64::from(self.summaries());
        (total > 0).then(|| ((i64::from(self.cached) * 200 + total) / (total * 2)) as u32)
    }
}

/// Everything the org dashboard shows of usage: the stat cards, the chart
/// and who used what. One read, so the numbers agree with each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageOverview {
    /// The period, the plan and the quota (the meter).
    pub now: UsageNow,
    /// The meter's words (reset date, days left).
    pub quota: super::QuotaView,
    /// Units of the current period that were spent: fresh and cached, spend
    /// and savings. Units in flight are in `now.used`, not here.
    pub period: UsageTotals,
    /// The last 30 UTC days, zero-filled (the bars).
    pub daily: DailyUsage,
    /// The current period day by day, from the UTC day it started to today:
    /// summaries spent in it so far (the cumulative line). The first day
    /// counts only what came after the period began.
    pub cumulative: Vec<CumulativeDay>,
    /// How many UTC days the whole period touches (the cumulative view's
    /// width; `cumulative` reaches only today).
    pub period_days: u32,
    /// Who used how much this period, as far as the viewer may see.
    pub members: MemberUsage,
}

/// One day of the current period on the cumulative view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CumulativeDay {
    /// The day (YYYY-MM-DD, UTC).
    pub date: String,
    /// Summaries spent in the period from its start to the end of this day.
    pub total: i32,
}

/// The current period's usage per member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberUsage {
    /// True when the caller sees every member (owners and admins); members
    /// see only their own line.
    pub everyone: bool,
    /// Most summaries first, then by email.
    pub members: Vec<MemberUsageLine>,
}

/// One member's summaries this period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberUsageLine {
    pub user_id: super::UserId,
    /// The member's email; absent for a Clerk account that shared none.
    pub email: Option<String>,
    pub role: super::OrgRole,
    /// Summaries made freshly for the org at this member's request.
    pub fresh: i32,
    /// Summaries this member got from the shared cache.
    pub cached: i32,
    /// This line is the caller's own.
    pub is_you: bool,
}

/// How many days a daily usage window spans: 1 (today only) to
/// [`UsageWindow::MAX`]; [`UsageWindow::DEFAULT`] when not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageWindow(u8);

/// A window length that is not a whole number of days from 1 to 90.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Days must be a whole number from 1 to {max}.", max = UsageWindow::MAX)]
pub struct UsageWindowError;

impl UsageWindow {
    pub const DEFAULT: UsageWindow = UsageWindow(30);
    pub const MAX: u8 = 90;

    /// The raw query value (`?days=…`); absent means the default.
    pub fn parse(raw: Option<&str>) -> Result<UsageWindow, UsageWindowError> {
        let Some(raw) = raw else {
            return Ok(UsageWindow::DEFAULT);
        };
        match raw.trim().parse::<u8>() {
            Ok(days) if (1..=UsageWindow::MAX).contains(&days) => Ok(UsageWindow(days)),
            _ => Err(UsageWindowError),
        }
    }

    pub fn days(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_defaults_to_thirty_days() {
        assert_eq!(UsageWindow::parse(None).unwrap().days(), 30);
    }

    #[test]
    fn the_window_accepts_one_to_ninety_days() {
        for days in 1..=90u8 {
            let raw = days.to_string();
            assert_eq!(UsageWindow::parse(Some(&raw)).unwrap().days(), days);
        }
        assert_eq!(UsageWindow::parse(Some(" 7 ")).unwrap().days(), 7);
    }

    #[test]
    fn the_window_refuses_anything_else() {
        for raw in [
            "",
            "0",
            "91",
            "256",
            "-1",
            "abc",
            "1.5",
            "30d",
            "+",
            "999999999999",
        ] {
            assert_eq!(
                UsageWindow::parse(Some(raw)),
                Err(UsageWindowError),
                "{raw}"
            );
        }
    }

    #[test]
    fn totals_add_up_the_days() {
        let day = |fresh, cached, cost, saved| UsageDay {
            date: "2026-12-07".into(),
            fresh,
            cached,
            cost_micros: cost,
            saved_micros: saved,
        };
        let totals = UsageTotals::of(&[day(1, 2, 30, 40), day(0, 0, 0, 0), day(3, 1, 5, 6)]);
        assert_eq!(
            totals,
            UsageTotals {
                fresh: 4,
                cached: 3,
                cost_micros: 35,
                saved_micros: 46
            }
        );
        assert_eq!(UsageTotals::of(&[]), UsageTotals::default());
    }

    #[test]
    fn the_hit_rate_is_whole_percent_and_absent_without_usage() {
        let totals = |fresh, cached| UsageTotals {
            fresh,
            cached,
            ..UsageTotals::default()
        };
        assert_eq!(totals(0, 0).cache_hit_percent(), None);
        assert_eq!(totals(3, 0).cache_hit_percent(), Some(0));
        assert_eq!(totals(0, 4).cache_hit_percent(), Some(100));
        assert_eq!(totals(1, 1).cache_hit_percent(), Some(50));
        // 1/3 = 33.3 %, 2/3 = 66.7 %, 1/8 = 12.5 % (half up).
        assert_eq!(totals(2, 1).cache_hit_percent(), Some(33));
        assert_eq!(totals(1, 2).cache_hit_percent(), Some(67));
        assert_eq!(totals(7, 1).cache_hit_percent(), Some(13));
        assert_eq!(totals(199, 1).cache_hit_percent(), Some(1));
        assert_eq!(totals(1, 199).cache_hit_percent(), Some(100));
        assert_eq!(totals(2, 3).summaries(), 5);
    }
}
