//! The dashboard's usage charts as server-rendered SVG: daily bars (fresh
//! under cached) over the last 30 days, and the current period's running
//! total against the plan limit. Each reads without JavaScript: a
//! `<title>`/`<desc>`, a `<title>` per bar (the browser's own tooltip), and
//! the same numbers in a visually hidden table. Once hydrated, hovering a
//! bar shows its day in words. The geometry is plain functions, tested
//! below; no chart library, nothing fetched.

use leptos::prelude::*;

use crate::domain::{CumulativeDay, UsageDay};

/// The drawing's coordinate space. The SVG stretches to its box
/// (`preserveAspectRatio="none"`), so every label lives in HTML around it
/// and strokes keep their width (`vector-effect`).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
/// The share of a day's slot left empty between bars.
const GAP: f64 = 0.25;

/// The top of the value axis: the smallest of 1, 2, 5 × 10ⁿ that is at
/// least `value` (and at least 1, so an empty chart still has a scale).
pub fn nice_ceiling(value: i32) -> i32 {
    let value = value.max(1);
    let mut step = 1i64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step * factor;
            if candidate >= i64::from(value) {
                return candidate.min(i64::from(i32::MAX)) as i32;
            }
        }
        step *= 10;
    }
}

/// The y coordinate of `value` on a scale from 0 (bottom) to `max` (top).
pub fn y_of(value: i32, max: i32, height: f64) -> f64 {
    let max = f64::from(max.max(1));
    height - (f64::from(value.max(0)).min(max) / max) * height
}

/// One day's stacked bar: fresh at the bottom, cached on top of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub width: f64,
    /// Top and height of the fresh part.
    pub fresh_y: f64,
    pub fresh_height: f64,
    /// Top and height of the cached part (it sits on the fresh part).
    pub cached_y: f64,
    pub cached_height: f64,
}

/// The bars of `days` across `width`, one equal slot per day, oldest on
/// the left, scaled to `max`.
pub fn bars(days: &[UsageDay], max: i32, width: f64, height: f64) -> Vec<Bar> {
    if days.is_empty() {
        return Vec::new();
    }
    let slot = width / days.len() as f64;
    days.iter()
        .enumerate()
        .map(|(i, day)| {
            let fresh_y = y_of(day.fresh, max, height);
            let cached_y = y_of(day.fresh + day.cached, max, height);
            Bar {
                x: slot * i as f64 + slot * GAP / 2.0,
                width: slot * (1.0 - GAP),
                fresh_y,
                fresh_height: height - fresh_y,
                cached_y,
                cached_height: fresh_y - cached_y,
            }
        })
        .collect()
}

/// The running total as a line: from (0, 0) at the period's start to the
/// end of each day so far, on an axis as wide as the whole period.
pub fn running_total_points(
    days: &[CumulativeDay],
    period_days: u32,
    max: i32,
    width: f64,
    height: f64,
) -> Vec<(f64, f64)> {
    let slot = width / f64::from(period_days.max(days.len() as u32).max(1));
    std::iter::once((0.0, height))
        .chain(
            days.iter()
                .enumerate()
                .map(|(i, day)| (slot * (i + 1) as f64, y_of(day.total, max, height))),
        )
        .collect()
}

/// `points` as an SVG `points` attribute, to two decimals.
pub fn svg_points(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(x, y)| format!("{x:.2},{y:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "Dec 7" from "2026-12-07"; the input unchanged if it is not a date.
pub fn short_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = date.split('-').skip(1);
    match (
        parts.next().and_then(|m| m.parse::<usize>().ok()),
        parts.next().and_then(|d| d.parse::<u32>().ok()),
    ) {
        (Some(month @ 1..=12), Some(day)) => format!("{} {day}", MONTHS[month - 1]),
        _ => date.to_owned(),
    }
}

fn day_words(day: &UsageDay) -> String {
    format!(
        "{}: {} fresh, {} from the cache",
        short_date(&day.date),
        day.fresh,
        day.cached
    )
}

/// The last 30 days as stacked bars. `period_start` (YYYY-MM-DD) marks
/// where the current period began, when that day is in the window.
#[component]
pub fn DailyChart(days: Vec<UsageDay>, #[prop(into)] period_start: String) -> impl IntoView {
    let max = nice_ceiling(days.iter().map(|d| d.fresh + d.cached).max().unwrap_or(0));
    let geometry = bars(&days, max, WIDTH, HEIGHT);
    let (fresh, cached): (i32, i32) = days
        .iter()
        .fold((0, 0), |(f, c), d| (f + d.fresh, c + d.cached));
    let (first, last) = (
        days.first().map(|d| d.date.clone()).unwrap_or_default(),
        days.last().map(|d| d.date.clone()).unwrap_or_default(),
    );
    let busiest = days
        .iter()
        .filter(|d| d.fresh + d.cached > 0)
        .max_by_key(|d| (d.fresh + d.cached, d.date.clone()));
    let description = format!(
        "Summaries per day from {} to {}: {fresh} made fresh and {cached} served from the shared cache in all{}.",
        short_date(&first),
        short_date(&last),
        busiest
            .map(|d| format!(
                "; the busiest day was {} with {}",
                short_date(&d.date),
                d.fresh + d.cached
            ))
            .unwrap_or_default()
    );
    let marker = days
        .iter()
        .position(|d| d.date == period_start)
        .filter(|&i| i > 0)
        .map(|i| WIDTH / days.len() as f64 * i as f64);
    let hovered = RwSignal::new(None::<usize>);
    let words: Vec<String> = days.iter().map(day_words).collect();
    let today = words.last().cloned().unwrap_or_default();
    let details = move || {
        hovered
            .get()
            .and_then(|i| words.get(i).cloned())
            .unwrap_or_else(|| today.clone())
    };
    let middle = days
        .get(days.len() / 2)
        .map(|d| short_date(&d.date))
        .unwrap_or_default();
    view! {
        <figure class="space-y-2" data-testid="daily-chart">
            <figcaption class="flex flex-wrap items-baseline justify-between gap-2">
                <span class="text-sm font-semibold text-slate-900">"Summaries per day, last 30 days"</span>
                <span class="flex items-center gap-3 text-xs text-slate-600" aria-hidden="true">
                    <span class="flex items-center gap-1"><span class="inline-block h-2.5 w-2.5 rounded-sm bg-indigo-600"></span>"Fresh"</span>
                    <span class="flex items-center gap-1"><span class="inline-block h-2.5 w-2.5 rounded-sm bg-emerald-400"></span>"From cache"</span>
                </span>
            </figcaption>
            <div class="flex gap-2">
                <div class="flex h-40 flex-col justify-between text-right text-xs text-slate-500" aria-hidden="true">
                    <span>{max}</span>
                    <span>"0"</span>
                </div>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none"
                    class="h-40 min-w-0 flex-1 overflow-visible border-b border-slate-300"
                    role="img" aria-labelledby="daily-chart-title daily-chart-desc"
                    on:mouseleave=move |_| hovered.set(None)>
                    <title id="daily-chart-title">"Summaries per day, last 30 days"</title>
                    <desc id="daily-chart-desc">{description}</desc>
                    <line x1="0" x2=WIDTH.to_string() y1=(HEIGHT / 2.0).to_string() y2=(HEIGHT / 2.0).to_string()
                        class="stroke-slate-200" stroke-dasharray="4 4" vector-effect="non-scaling-stroke" />
                    {marker.map(|x| view! {
                        <line x1=format!("{x:.2}") x2=format!("{x:.2}") y1="0" y2=HEIGHT.to_string()
                            class="stroke-slate-400" stroke-dasharray="3 3" vector-effect="non-scaling-stroke"
                            data-testid="period-start-marker" />
                    })}
                    {geometry.into_iter().zip(days.iter()).enumerate().map(|(i, (bar, day))| view! {
                        <g on:mouseenter=move |_| hovered.set(Some(i)) data-date=day.date.clone()>
                            <title>{day_words(day)}</title>
                            // The whole slot answers the pointer, not only the bar.
                            <rect x=format!("{:.2}", bar.x) y="0" width=format!("{:.2}", bar.width) height=HEIGHT.to_string() fill="transparent" />
                            <rect x=format!("{:.2}", bar.x) y=format!("{:.2}", bar.fresh_y) width=format!("{:.2}", bar.width)
                                height=format!("{:.2}", bar.fresh_height) class="fill-indigo-600" />
                            <rect x=format!("{:.2}", bar.x) y=format!("{:.2}", bar.cached_y) width=format!("{:.2}", bar.width)
                                height=format!("{:.2}", bar.cached_height) class="fill-emerald-400" />
                        </g>
                    }).collect_view()}
                </svg>
            </div>
            <div class="flex justify-between pl-6 text-xs text-slate-500" aria-hidden="true">
                <span>{short_date(&first)}</span>
                <span>{middle}</span>
                <span>"Today"</span>
            </div>
            <p class="min-h-5 text-sm text-slate-700" data-testid="chart-details" aria-hidden="true">{details}</p>
            <table class="sr-only">
                <caption>"Summaries per day, last 30 days"</caption>
                <thead><tr><th scope="col">"Day"</th><th scope="col">"Fresh"</th><th scope="col">"From cache"</th></tr></thead>
                <tbody>
                    {days.iter().map(|d| view! {
                        <tr><th scope="row">{d.date.clone()}</th><td>{d.fresh}</td><td>{d.cached}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </figure>
    }
    // Erased: the dashboard nests these deep enough to pass the type
    // checker's recursion limit otherwise.
    .into_any()
}

/// The current period's running total, with the plan's limit as a line.
#[component]
pub fn PeriodChart(days: Vec<CumulativeDay>, period_days: u32, limit: i32) -> impl IntoView {
    let total = days.last().map(|d| d.total).unwrap_or(0);
    let max = nice_ceiling(total.max(limit));
    let points = svg_points(&running_total_points(
        &days,
        period_days,
        max,
        WIDTH,
        HEIGHT,
    ));
    let limit_y = format!("{:.2}", y_of(limit, max, HEIGHT));
    let (first, last) = (
        days.first().map(|d| d.date.clone()).unwrap_or_default(),
        days.last().map(|d| d.date.clone()).unwrap_or_default(),
    );
    let description = format!(
        "Summaries used this period, from {} to today ({}): {total} of the plan's {limit}, after {} of its {period_days} days.",
        short_date(&first),
        short_date(&last),
        days.len()
    );
    view! {
        <figure class="space-y-2" data-testid="period-chart">
            <figcaption class="flex flex-wrap items-baseline justify-between gap-2">
                <span class="text-sm font-semibold text-slate-900">"This period, running total"</span>
                <span class="flex items-center gap-3 text-xs text-slate-600" aria-hidden="true">
                    <span class="flex items-center gap-1"><span class="inline-block h-0.5 w-4 bg-indigo-600"></span>"Used"</span>
                    <span class="flex items-center gap-1"><span class="inline-block h-0.5 w-4 bg-rose-500"></span>{format!("Plan limit ({limit})")}</span>
                </span>
            </figcaption>
            <div class="flex gap-2">
                <div class="flex h-40 flex-col justify-between text-right text-xs text-slate-500" aria-hidden="true">
                    <span>{max}</span>
                    <span>"0"</span>
                </div>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none"
                    class="h-40 min-w-0 flex-1 overflow-visible border-b border-slate-300"
                    role="img" aria-labelledby="period-chart-title period-chart-desc">
                    <title id="period-chart-title">"Summaries used this period against the plan limit"</title>
                    <desc id="period-chart-desc">{description}</desc>
                    <line x1="0" x2=WIDTH.to_string() y1=limit_y.clone() y2=limit_y
                        class="stroke-rose-500" stroke-width="2" stroke-dasharray="6 4" vector-effect="non-scaling-stroke"
                        data-testid="limit-line" />
                    <polyline points=points fill="none" class="stroke-indigo-600" stroke-width="2.5"
                        stroke-linejoin="round" vector-effect="non-scaling-stroke" data-testid="running-total" />
                </svg>
            </div>
            <div class="flex justify-between pl-6 text-xs text-slate-500" aria-hidden="true">
                <span>{short_date(&first)}</span>
                <span>{format!("{period_days} days")}</span>
            </div>
            <table class="sr-only">
                <caption>"Summaries used this period, running total"</caption>
                <thead><tr><th scope="col">"Day"</th><th scope="col">"Used so far"</th><th scope="col">"Plan limit"</th></tr></thead>
                <tbody>
                    {days.iter().map(|d| view! {
                        <tr><th scope="row">{d.date.clone()}</th><td>{d.total}</td><td>{limit}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </figure>
    }
    // Erased: the dashboard nests these deep enough to pass the type
    // checker's recursion limit otherwise.
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(fresh: i32, cached: i32) -> UsageDay {
        UsageDay {
            date: "2026-12-07".into(),
            fresh,
            cached,
            cost_micros: 0,
            saved_micros: 0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_axis_tops_out_at_one_two_or_five_times_a_power_of_ten() {
        let cases = [
            (-3, 1),
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 5),
            (5, 5),
            (6, 10),
            (10, 10),
            (11, 20),
            (21, 50),
            (51, 100),
            (199, 200),
            (200, 200),
            (201, 500),
            (1_001, 2_000),
        ];
        for (value, top) in cases {
            assert_eq!(nice_ceiling(value), top, "{value}");
        }
        assert_eq!(
            nice_ceiling(i32::MAX),
            i32::MAX,
            "capped, never overflowing"
        );
    }

    #[test]
    fn values_map_from_the_bottom_and_are_clamped() {
        assert!(close(y_of(0, 10, 100.0), 100.0));
        assert!(close(y_of(10, 10, 100.0), 0.0));
        assert!(close(y_of(5, 10, 100.0), 50.0));
        assert!(close(y_of(20, 10, 100.0), 0.0), "above the top");
        assert!(close(y_of(-1, 10, 100.0), 100.0), "below zero");
        assert!(close(y_of(1, 0, 100.0), 0.0), "a zero scale is 1");
    }

    #[test]
    fn bars_share_the_width_and_stack_cached_on_fresh() {
        let days = [day(2, 3), day(0, 0), day(5, 0), day(0, 1)];
        let got = bars(&days, 5, 400.0, 100.0);
        assert_eq!(got.len(), 4);
        // Equal slots of 100, each bar centred with a quarter left empty.
        for (i, bar) in got.iter().enumerate() {
            assert!(close(bar.x, 100.0 * i as f64 + 12.5), "{i}: {bar:?}");
            assert!(close(bar.width, 75.0), "{i}: {bar:?}");
            // The cached part ends where the fresh part begins.
            assert!(close(bar.cached_y + bar.cached_height, bar.fresh_y));
            assert!(close(bar.fresh_y + bar.fresh_height, 100.0));
        }
        // 2 fresh + 3 cached on a scale of 5: fresh 40 high, cached 60.
        assert!(close(got[0].fresh_height, 40.0) && close(got[0].cached_height, 60.0));
        assert!(close(got[0].cached_y, 0.0), "5 of 5 reaches the top");
        // A zero day draws nothing.
        assert!(close(got[1].fresh_height, 0.0) && close(got[1].cached_height, 0.0));
        assert!(close(got[2].fresh_height, 100.0) && close(got[2].cached_height, 0.0));
        assert!(close(got[3].fresh_height, 0.0) && close(got[3].cached_height, 20.0));
        assert!(bars(&[], 5, 400.0, 100.0).is_empty());
    }

    #[test]
    fn the_running_total_spans_the_whole_period_from_zero() {
        let days: Vec<CumulativeDay> = [1, 1, 4]
            .iter()
            .enumerate()
            .map(|(i, total)| CumulativeDay {
                date: format!("2026-12-0{}", i + 1),
                total: *total,
            })
            .collect();
        // A 10-day period, 3 days in, scale 5, 100 × 50.
        let got = running_total_points(&days, 10, 5, 100.0, 50.0);
        let want = [(0.0, 50.0), (10.0, 40.0), (20.0, 40.0), (30.0, 10.0)];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(close(g.0, w.0) && close(g.1, w.1), "{got:?}");
        }
        assert_eq!(svg_points(&got[..2]), "0.00,50.00 10.00,40.00");
        // More days than the period claims never run off the right edge.
        let over = running_total_points(&days, 2, 5, 100.0, 50.0);
        assert!(close(over.last().unwrap().0, 100.0));
    }

    #[test]
    fn dates_read_short() {
        assert_eq!(short_date("2026-12-07"), "Dec 7");
        assert_eq!(short_date("2027-01-31"), "Jan 31");
        assert_eq!(short_date("not a date"), "not a date");
        assert_eq!(short_date("2026-13-01"), "2026-13-01");
    }
}
