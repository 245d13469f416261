//! Cron next-run times across daylight-saving changes in America/New_York (2026: clocks spring
//! forward 02:00 → 03:00 on 8 March and fall back 02:00 → 01:00 on 1 November), plus the
//! six-field and shorthand forms.

use dbstash::domain::schedule::Schedule;
use jiff::tz::TimeZone;
use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn ny() -> TimeZone {
    TimeZone::get("America/New_York").expect("tzdata has America/New_York")
}

fn local(s: &Schedule, from: &str, n: usize) -> Vec<String> {
    s.upcoming(ts(from), &ny(), n)
        .iter()
        .map(|z| z.strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
        .collect()
}

#[test]
fn spring_forward_a_run_in_the_skipped_hour_happens_once_after_the_gap() {
    let s = Schedule::parse("30 2 * * *").expect("cron");
    assert_eq!(
        local(&s, "2026-03-06T12:00:00Z", 4),
        [
            "2026-03-07 02:30:00 EST",
            // 02:30 does not exist on 8 March: the run happens once, when the gap ends
            "2026-03-08 03:00:00 EDT",
            "2026-03-09 02:30:00 EDT",
            "2026-03-10 02:30:00 EDT",
        ]
    );
}

#[test]
fn spring_forward_runs_outside_the_gap_are_untouched() {
    let s = Schedule::parse("15 1,3 * * *").expect("cron");
    assert_eq!(
        local(&s, "2026-03-08T05:00:00Z", 3),
        [
            "2026-03-08 01:15:00 EST",
            "2026-03-08 03:15:00 EDT",
            "2026-03-09 01:15:00 EDT",
        ]
    );
    // 01:15 EST and 03:15 EDT are one real hour apart.
    let runs = s.upcoming(ts("2026-03-08T05:00:00Z"), &ny(), 2);
    assert_eq!(
        runs[1].timestamp().as_second() - runs[0].timestamp().as_second(),
        3600
    );
}

#[test]
fn fall_back_a_run_in_the_repeated_hour_happens_once() {
    let s = Schedule::parse("30 1 * * *").expect("cron");
    let runs = s.upcoming(ts("2026-10-31T12:00:00Z"), &ny(), 3);
    let shown: Vec<String> = runs
        .iter()
        .map(|z| z.strftime("%Y-%m-%d %H:%M %Z").to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "2026-11-01 01:30 EDT",
            "2026-11-02 01:30 EST",
            "2026-11-03 01:30 EST",
        ]
    );
    // Once on 1 November (not again at 01:30 EST), then daily.
    let nov1: Vec<&String> = shown
        .iter()
        .filter(|s| s.starts_with("2026-11-01"))
        .collect();
    assert_eq!(nov1.len(), 1, "{shown:?}");
    assert_eq!(shown[0], "2026-11-01 01:30 EDT");
    assert_eq!(shown[1], "2026-11-02 01:30 EST");
    // 25 real hours between them: the day is one hour longer.
    assert_eq!(
        runs[1].timestamp().as_second() - runs[0].timestamp().as_second(),
        25 * 3600
    );
}

#[test]
fn fall_back_hourly_runs_every_real_hour() {
    let s = Schedule::parse("0 * * * *").expect("cron");
    let runs = s.upcoming(ts("2026-11-01T04:30:00Z"), &ny(), 4);
    let secs: Vec<i64> = runs.iter().map(|z| z.timestamp().as_second()).collect();
    assert!(secs.windows(2).all(|w| w[1] - w[0] == 3600), "{runs:?}");
    let shown: Vec<String> = runs
        .iter()
        .map(|z| z.strftime("%H:%M %Z").to_string())
        .collect();
    assert_eq!(shown, ["01:00 EDT", "01:00 EST", "02:00 EST", "03:00 EST"]);
}

#[test]
fn six_fields_every_second_across_the_change() {
    let s = Schedule::parse("*/1 * * * * *").expect("six-field cron");
    // 05:59:58Z is 01:59:58 EDT on 1 November (the clock falls back at 06:00:00Z) and
    // 06:59:58Z is 01:59:58 EST on 8 March (it springs forward at 07:00:00Z): the runs stay one
    // real second apart whatever the wall clock does.
    for from in ["2026-11-01T05:59:58Z", "2026-03-08T06:59:58Z"] {
        let runs = s.upcoming(ts(from), &ny(), 4);
        let secs: Vec<i64> = runs.iter().map(|z| z.timestamp().as_second()).collect();
        assert_eq!(runs.len(), 4);
        assert_eq!(secs[0], ts(from).as_second() + 1, "{runs:?}");
        assert!(secs.windows(2).all(|w| w[1] - w[0] == 1), "{runs:?}");
    }
}

#[test]
fn weekly_shorthand_is_sunday_midnight_local() {
    let s = Schedule::parse("@weekly").expect("@weekly");
    // Wednesday 4 March 2026; the next Sundays are 8 March (EST midnight, before the change)
    // and 15 March (EDT).
    assert_eq!(
        local(&s, "2026-03-04T12:00:00Z", 2),
        ["2026-03-08 00:00:00 EST", "2026-03-15 00:00:00 EDT"]
    );
    let runs = s.upcoming(ts("2026-03-04T12:00:00Z"), &ny(), 2);
    // one week minus the lost hour
    assert_eq!(
        runs[1].timestamp().as_second() - runs[0].timestamp().as_second(),
        7 * 86_400 - 3600
    );
}

#[test]
fn shorthands_and_field_counts() {
    for ok in [
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "0 2 * * *",
        "0 0 2 * * *",
    ] {
        assert!(Schedule::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["@sometimes", "0 2 * *", "0 0 0 2 * * *", "", "61 * * * *"] {
        assert!(Schedule::parse(bad).is_err(), "{bad}");
    }
    let monthly = Schedule::parse("@monthly").expect("@monthly");
    assert_eq!(
        local(&monthly, "2026-03-15T00:00:00Z", 1),
        ["2026-04-01 00:00:00 EDT"]
    );
}
