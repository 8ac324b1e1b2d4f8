//! Fire times of cron expressions across DST changes and calendar oddities,
//! against hand-checked tables; property tests; and `waflow cron next`.

use assert_cmd::Command;
use proptest::prelude::*;
use waflow::config::Zone;
use waflow::schedule::{Cron, next_after, next_n};

/// (what it shows, expression, zone, after, the next fires in RFC 3339 with offset).
const CASES: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "berlin spring fixed in gap",
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00Z",
        &[
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ],
    ),
    (
        "berlin spring several times in gap fire once",
        "0,15,30,45 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00Z",
        &[
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:00:00+02:00",
            "2026-03-30T02:15:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-30T02:45:00+02:00",
        ],
    ),
    (
        "berlin spring wildcard skips the gap",
        "*/30 * * * *",
        "Europe/Berlin",
        "2026-03-29T00:10:00Z",
        &[
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T03:30:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ],
    ),
    (
        "berlin spring hourly",
        "@hourly",
        "Europe/Berlin",
        "2026-03-28T23:30:00Z",
        &[
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ],
    ),
    (
        "berlin fall fixed in overlap fires in the first pass",
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    (
        "berlin fall wildcard fires in both passes",
        "*/30 * * * *",
        "Europe/Berlin",
        "2026-10-24T23:45:00Z",
        &[
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T03:30:00+01:00",
        ],
    ),
    (
        "berlin fall hourly both passes",
        "@hourly",
        "Europe/Berlin",
        "2026-10-24T23:30:00Z",
        &[
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
    ),
    (
        "berlin weekday 09:00 across spring",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        "2026-03-26T12:00:00Z",
        &[
            "2026-03-27T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00",
            "2026-03-31T09:00:00+02:00",
            "2026-04-01T09:00:00+02:00",
        ],
    ),
    (
        "berlin weekday 09:00 across fall",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        "2026-10-22T12:00:00Z",
        &[
            "2026-10-23T09:00:00+02:00",
            "2026-10-26T09:00:00+01:00",
            "2026-10-27T09:00:00+01:00",
            "2026-10-28T09:00:00+01:00",
        ],
    ),
    (
        "berlin 2027 spring fixed in gap",
        "0 2 * * *",
        "Europe/Berlin",
        "2027-03-27T12:00:00Z",
        &["2027-03-28T03:00:00+02:00", "2027-03-29T02:00:00+02:00"],
    ),
    (
        "berlin 2027 fall fixed in overlap",
        "0 2 * * *",
        "Europe/Berlin",
        "2027-10-30T12:00:00Z",
        &["2027-10-31T02:00:00+02:00", "2027-11-01T02:00:00+01:00"],
    ),
    (
        "new york spring fixed in gap",
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    (
        "new york spring wildcard minute",
        "0 * * * *",
        "America/New_York",
        "2026-03-08T05:30:00Z",
        &[
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00",
        ],
    ),
    (
        "new york fall fixed in overlap",
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    (
        "new york fall wildcard both passes",
        "*/20 1 * * *",
        "America/New_York",
        "2026-11-01T04:50:00Z",
        &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:20:00-04:00",
            "2026-11-01T01:40:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:20:00-05:00",
            "2026-11-01T01:40:00-05:00",
        ],
    ),
    (
        "new york 2027 spring",
        "0 2 * * *",
        "America/New_York",
        "2027-03-13T12:00:00Z",
        &["2027-03-14T03:00:00-04:00", "2027-03-15T02:00:00-04:00"],
    ),
    (
        "new york 2027 fall",
        "15 1 * * *",
        "America/New_York",
        "2027-11-06T12:00:00Z",
        &["2027-11-07T01:15:00-04:00", "2027-11-08T01:15:00-05:00"],
    ),
    (
        "lord howe fall half hour overlap fixed",
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-04T00:00:00Z",
        &["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
    ),
    (
        "lord howe fall half hour overlap wildcard",
        "*/15 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-04T13:50:00Z",
        &[
            "2026-04-05T01:00:00+11:00",
            "2026-04-05T01:15:00+11:00",
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30",
            "2026-04-05T01:45:00+10:30",
            "2026-04-06T01:00:00+10:30",
        ],
    ),
    (
        "lord howe spring half hour gap fixed",
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T00:00:00Z",
        &["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
    ),
    (
        "lord howe spring half hour gap wildcard",
        "*/15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T15:00:00Z",
        &[
            "2026-10-04T02:30:00+11:00",
            "2026-10-04T02:45:00+11:00",
            "2026-10-05T02:00:00+11:00",
        ],
    ),
    (
        "lord howe 2027 spring",
        "0 2 * * *",
        "Australia/Lord_Howe",
        "2027-10-02T00:00:00Z",
        &["2027-10-03T02:30:00+11:00", "2027-10-04T02:00:00+11:00"],
    ),
    (
        "lord howe 2027 fall",
        "30 1 * * *",
        "Australia/Lord_Howe",
        "2027-04-03T00:00:00Z",
        &["2027-04-04T01:30:00+11:00", "2027-04-05T01:30:00+10:30"],
    ),
    (
        "ho chi minh has no dst",
        "0 9 * * MON-FRI",
        "Asia/Ho_Chi_Minh",
        "2026-03-27T00:00:00Z",
        &[
            "2026-03-27T09:00:00+07:00",
            "2026-03-30T09:00:00+07:00",
            "2026-03-31T09:00:00+07:00",
        ],
    ),
    (
        "ho chi minh night",
        "*/30 2 * * *",
        "Asia/Ho_Chi_Minh",
        "2026-10-24T00:00:00Z",
        &[
            "2026-10-25T02:00:00+07:00",
            "2026-10-25T02:30:00+07:00",
            "2026-10-26T02:00:00+07:00",
        ],
    ),
    (
        "utc last day of month",
        "0 0 L * *",
        "UTC",
        "2026-01-15T00:00:00Z",
        &[
            "2026-01-31T00:00:00+00:00",
            "2026-02-28T00:00:00+00:00",
            "2026-03-31T00:00:00+00:00",
            "2026-04-30T00:00:00+00:00",
        ],
    ),
    (
        "utc leap day",
        "0 12 29 2 *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2028-02-29T12:00:00+00:00", "2032-02-29T12:00:00+00:00"],
    ),
    (
        "utc fifth friday only in months that have one",
        "0 8 * * FRI#5",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-30T08:00:00+00:00",
            "2026-05-29T08:00:00+00:00",
            "2026-07-31T08:00:00+00:00",
            "2026-10-30T08:00:00+00:00",
        ],
    ),
    (
        "utc last friday",
        "0 8 * * 5L",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-30T08:00:00+00:00",
            "2026-02-27T08:00:00+00:00",
            "2026-03-27T08:00:00+00:00",
        ],
    ),
    (
        "utc last friday by name",
        "0 8 * * FRIL",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-30T08:00:00+00:00", "2026-02-27T08:00:00+00:00"],
    ),
    (
        "utc nearest weekday",
        "0 9 15W * *",
        "UTC",
        "2026-08-01T00:00:00Z",
        &[
            "2026-08-14T09:00:00+00:00",
            "2026-09-15T09:00:00+00:00",
            "2026-10-15T09:00:00+00:00",
        ],
    ),
    (
        "utc last weekday",
        "0 16 LW * *",
        "UTC",
        "2026-05-01T00:00:00Z",
        &["2026-05-29T16:00:00+00:00", "2026-06-30T16:00:00+00:00"],
    ),
    (
        "utc step from offset",
        "5/15 * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:05:00+00:00",
            "2026-01-01T00:20:00+00:00",
            "2026-01-01T00:35:00+00:00",
            "2026-01-01T00:50:00+00:00",
            "2026-01-01T01:05:00+00:00",
        ],
    ),
    (
        "utc range step",
        "1-10/3 0 * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:01:00+00:00",
            "2026-01-01T00:04:00+00:00",
            "2026-01-01T00:07:00+00:00",
            "2026-01-01T00:10:00+00:00",
        ],
    ),
    (
        "utc seconds field",
        "*/15 * * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:00:15+00:00",
            "2026-01-01T00:00:30+00:00",
            "2026-01-01T00:00:45+00:00",
            "2026-01-01T00:01:00+00:00",
            "2026-01-01T00:01:15+00:00",
        ],
    ),
    (
        "utc either day field",
        "0 0 1 * MON",
        "UTC",
        "2026-03-01T12:00:00Z",
        &[
            "2026-03-02T00:00:00+00:00",
            "2026-03-09T00:00:00+00:00",
            "2026-03-16T00:00:00+00:00",
            "2026-03-23T00:00:00+00:00",
        ],
    ),
    (
        "utc sunday is 0 and 7",
        "0 0 * * 7",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"],
    ),
    (
        "utc month and weekday names any case",
        "0 9 * jan,JUL Mon",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-05T09:00:00+00:00",
            "2026-01-12T09:00:00+00:00",
            "2026-01-19T09:00:00+00:00",
        ],
    ),
    (
        "utc mon-sun is every day",
        "0 12 * * MON-SUN",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T12:00:00+00:00",
            "2026-01-02T12:00:00+00:00",
            "2026-01-03T12:00:00+00:00",
        ],
    ),
    (
        "utc yearly",
        "@yearly",
        "UTC",
        "2026-06-01T00:00:00Z",
        &["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"],
    ),
    (
        "utc annually",
        "@annually",
        "UTC",
        "2026-06-01T00:00:00Z",
        &["2027-01-01T00:00:00+00:00"],
    ),
    (
        "utc monthly",
        "@monthly",
        "UTC",
        "2026-01-31T00:00:00Z",
        &["2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"],
    ),
    (
        "utc weekly",
        "@weekly",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"],
    ),
    (
        "utc daily",
        "@daily",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"],
    ),
    (
        "utc midnight",
        "@midnight",
        "UTC",
        "2026-02-28T12:00:00Z",
        &["2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00"],
    ),
    (
        "utc strictly after",
        "0 9 * * *",
        "UTC",
        "2026-01-01T09:00:00Z",
        &["2026-01-02T09:00:00+00:00"],
    ),
];

fn show(t: jiff::Timestamp, zone: &Zone) -> String {
    t.to_zoned(zone.tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[test]
fn every_case_fires_as_the_dst_rules_say() {
    for (name, expr, tz, after, expected) in CASES {
        let cron = Cron::parse(expr).unwrap();
        let zone: Zone = tz.parse().unwrap();
        let after: jiff::Timestamp = after.parse().unwrap();
        let got: Vec<String> = next_n(&cron, &zone.tz, after, expected.len())
            .into_iter()
            .map(|t| show(t, &zone))
            .collect();
        assert_eq!(&got, expected, "{name}: {expr} in {tz}");
    }
}

#[test]
fn an_expression_that_never_fires_gives_nothing() {
    let cron = Cron::parse("0 0 30 2 *").unwrap();
    assert_eq!(
        next_after(
            &cron,
            &jiff::tz::TimeZone::UTC,
            "2026-01-01T00:00:00Z".parse().unwrap()
        ),
        None
    );
}

#[test]
fn cron_next_prints_one_instant_per_line() {
    let out = Command::cargo_bin("waflow")
        .unwrap()
        .args([
            "cron",
            "next",
            "0 9 * * MON-FRI",
            "--tz",
            "Europe/Berlin",
            "--after",
            "2026-03-26T12:00:00Z",
            "--count",
            "3",
        ])
        .env_remove("WAFLOW_CONFIG")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-03-27T09:00:00+01:00\n2026-03-30T09:00:00+02:00\n2026-03-31T09:00:00+02:00\n"
    );
}

#[test]
fn cron_next_rejects_bad_expressions_and_zones_with_exit_1() {
    let run = |args: &[&str]| {
        Command::cargo_bin("waflow")
            .unwrap()
            .args(args)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let bad = run(&["cron", "next", "0 25 * * *"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("field 2 (hour) `25`: `25` is out of range 0-23")
    );
    let zone = run(&["cron", "next", "0 9 * * *", "--tz", "Europe/Berlim"]);
    assert_eq!(zone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&zone.stderr).contains("unknown time zone `Europe/Berlim`"));
    let after = run(&["cron", "next", "0 9 * * *", "--after", "yesterday"]);
    assert_eq!(after.status.code(), Some(1));
}

fn expressions() -> impl Strategy<Value = String> {
    let minute = prop_oneof![
        Just("*".to_owned()),
        Just("*/7".to_owned()),
        Just("0".to_owned()),
        Just("15,45".to_owned()),
        Just("5/20".to_owned()),
        (0u8..60).prop_map(|m| m.to_string())
    ];
    let hour = prop_oneof![
        Just("*".to_owned()),
        Just("2".to_owned()),
        Just("1-3".to_owned()),
        Just("*/5".to_owned()),
        (0u8..24).prop_map(|h| h.to_string())
    ];
    let dom = prop_oneof![
        Just("*".to_owned()),
        Just("L".to_owned()),
        Just("1,15".to_owned()),
        Just("15W".to_owned()),
        (1u8..29).prop_map(|d| d.to_string())
    ];
    let dow = prop_oneof![
        Just("*".to_owned()),
        Just("MON-FRI".to_owned()),
        Just("SUN".to_owned()),
        Just("FRI#2".to_owned()),
        Just("5L".to_owned())
    ];
    (minute, hour, dom, dow).prop_map(|(m, h, d, w)| format!("{m} {h} {d} * {w}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Fire times strictly increase, and each one is a matching wall-clock time
    /// in its zone — or, for a fixed-time job, the end of a DST gap.
    #[test]
    fn fire_times_increase_and_match(
        expr in expressions(),
        zone in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Lord_Howe"), Just("Asia/Ho_Chi_Minh"), Just("UTC")],
        start in 1_767_225_600i64..1_830_297_600i64,
    ) {
        let cron = Cron::parse(&expr).unwrap();
        let zone: Zone = zone.parse().unwrap();
        let after = jiff::Timestamp::from_second(start).unwrap();
        let fires = next_n(&cron, &zone.tz, after, 6);
        let mut previous = after;
        for t in fires {
            prop_assert!(t > previous, "{expr}: {t} not after {previous}");
            previous = t;
            let z = t.to_zoned(zone.tz.clone());
            let civil_matches = cron.matches_date(z.date()) && cron.matches_time(z.hour(), z.minute(), z.second());
            let after_gap = cron.fixed_time && zone.tz.preceding(t + jiff::SignedDuration::from_secs(1)).next().is_some_and(|tr| tr.timestamp() == t);
            prop_assert!(civil_matches || after_gap, "{expr} in {}: {} matches neither", zone.name, show(t, &zone));
        }
    }
}
