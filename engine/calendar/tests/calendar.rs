//! The calendar against the law, the Cabinet orders and the examples of
//! `shared/regulation/lv-calendar.md`; then its properties.

use std::collections::BTreeMap;

use jiff::civil::{Date, Weekday, date};
use studyflow_calendar::{Calendar, Day, Reading};

fn cal() -> Calendar {
    Calendar::latvia()
}

#[test]
fn examples_of_the_calendar_facts() {
    let c = cal();
    // Law s.2: 4 May 2024 was a Saturday, so Monday 6 May 2024 was off.
    assert!(
        matches!(c.day(date(2024, 5, 6)).unwrap(), Day::MovedHoliday { from, .. } if *from == date(2024, 5, 4))
    );
    // Song and Dance Celebration final days on Sundays: the Mondays after were off.
    assert!(!c.is_working_day(date(2018, 7, 9)).unwrap());
    assert!(!c.is_working_day(date(2023, 7, 10)).unwrap());
    assert!(
        !c.is_working_day(date(2028, 7, 10)).unwrap(),
        "planned 2028 final day, from data"
    );
    // One-off days off set by law.
    assert!(!c.is_working_day(date(2018, 9, 24)).unwrap());
    assert!(!c.is_working_day(date(2023, 5, 29)).unwrap());
    // Every Cabinet transfer: the day is off, the Saturday is worked.
    for line in studyflow_calendar::BUILTIN_DATA
        .lines()
        .filter(|l| l.starts_with("transfer"))
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (off, worked): (Date, Date) = (w[1].parse().unwrap(), w[2].parse().unwrap());
        assert!(!c.is_working_day(off).unwrap(), "{off}");
        assert!(c.is_working_day(worked).unwrap(), "{worked}");
    }
    // Christmas Eve is a holiday since 2007 only; 4 May since 2002.
    assert!(c.is_working_day(date(2004, 12, 24)).unwrap());
    assert!(!c.is_working_day(date(2008, 12, 24)).unwrap());
    assert!(c.is_working_day(date(2001, 5, 4)).unwrap());
}

#[test]
fn the_counting_example() {
    let c = cal();
    // Publication on 30 June 2026 → the 10th working day before is Friday 12 June 2026.
    let d = c
        .deadline_before(date(2026, 6, 30), 10, Reading::NthWorkingDayBefore)
        .unwrap();
    assert_eq!(d.date, date(2026, 6, 12));
    assert_eq!(d.counted.len(), 10);
    assert!(
        d.counted.contains(&date(2026, 6, 27)),
        "the transferred Saturday counts"
    );
    assert!(d.skipped.iter().any(|(day, _)| *day == date(2026, 6, 24)));
    // The stricter reading gives one working day earlier.
    let strict = c
        .deadline_before(date(2026, 6, 30), 10, Reading::ClearWorkingDays)
        .unwrap();
    assert_eq!(strict.date, date(2026, 6, 11));
}

#[test]
fn years_2024_to_2027_day_by_day() {
    let text = include_str!("vectors/days-off-2024-2027.txt");
    let mut special: BTreeMap<Date, bool> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        special.insert(w[0].parse().unwrap(), w[1] == "working");
    }
    let c = cal();
    let mut d = date(2024, 1, 1);
    while d <= date(2027, 12, 31) {
        let weekday = !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        let expected = special.get(&d).copied().unwrap_or(weekday);
        assert_eq!(
            c.is_working_day(d).unwrap(),
            expected,
            "{d}: {:?}",
            c.day(d).unwrap()
        );
        d = d.tomorrow().unwrap();
    }
}

#[test]
fn forward_then_back_returns_to_the_same_working_day() {
    let c = cal();
    let mut d = date(2001, 1, 1);
    while d < date(2099, 1, 1) {
        if c.is_working_day(d).unwrap() {
            for n in [1, 2, 5, 10, 23, 250] {
                let ahead = c.nth_working_day_after(d, n).unwrap();
                assert_eq!(c.nth_working_day_before(ahead, n).unwrap(), d, "{d} ±{n}");
                assert_eq!(c.working_days_between(d, ahead).unwrap(), i64::from(n));
            }
        }
        d = d.checked_add(jiff::Span::new().days(17)).unwrap();
    }
}

#[test]
fn weekends_are_off_unless_transferred() {
    let c = cal();
    let mut d = date(2000, 1, 1);
    while d <= date(2100, 12, 31) {
        let day = c.day(d).unwrap();
        if matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            assert_eq!(
                day.is_working(),
                matches!(day, Day::WorkingSaturday { .. }),
                "{d}"
            );
        }
        if let Day::WorkingSaturday { .. } = day {
            assert_eq!(d.weekday(), Weekday::Saturday);
            assert!(day.is_working());
        }
        d = d.tomorrow().unwrap();
    }
}

#[test]
fn overrides_add_and_cancel_and_change_the_version() {
    let base = cal();
    let over = Calendar::with_overrides(&[(
        "orders-2027.txt",
        "transfer 2027-05-03 2027-05-08 Cabinet order for 2027 (hypothetical)\ncancel 2028-07-09\n",
    )])
    .unwrap();
    assert!(base.is_working_day(date(2027, 5, 3)).unwrap());
    assert!(!over.is_working_day(date(2027, 5, 3)).unwrap());
    assert!(over.is_working_day(date(2027, 5, 8)).unwrap());
    assert!(
        over.is_working_day(date(2028, 7, 10)).unwrap(),
        "cancelled festival day"
    );
    assert_ne!(base.version(), over.version());
    let bad = Calendar::with_overrides(&[("bad.txt", "# c\ntransfer 2027-05-03 2027-05-07\n")])
        .unwrap_err();
    assert_eq!((bad.file.as_str(), bad.line), ("bad.txt", 2));
    assert!(bad.message.contains("not a Saturday"), "{bad}");
}

#[test]
fn dates_outside_the_range_are_errors() {
    let c = cal();
    assert!(c.day(date(1999, 12, 31)).is_err());
    assert!(c.day(date(2101, 1, 1)).is_err());
    assert!(c.nth_working_day_before(date(2000, 1, 3), 5).is_err());
}

/// An override file that would make two calendars at once is refused with its file and line:
/// a day moved to two Saturdays, two days moved to one Saturday, a `cancel` of nothing, a date
/// outside 2000–2100. A byte-order mark is accepted. A deadline that runs out of the range
/// names the date outside it.
#[test]
fn override_files_make_one_calendar_or_are_refused_at_their_line() {
    let refused = |text: &str| {
        Calendar::with_overrides(&[("orders.txt", text)])
            .map(|_| ())
            .unwrap_err()
    };
    let e = refused(
        "transfer 2027-05-03 2027-05-08 first order\n# a second order\ntransfer 2027-05-03 2027-05-15 second order\n",
    );
    assert_eq!((e.file.as_str(), e.line), ("orders.txt", 3), "{e}");
    assert!(e.message.contains("already moved to 2027-05-08"), "{e}");
    let e = refused("transfer 2027-05-03 2027-05-08\ntransfer 2027-05-07 2027-05-08\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("already worked for 2027-05-03"), "{e}");
    let e = refused("cancel 2027-05-05\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(
        e.message
            .contains("no one-off day, festival day or transfer on 2027-05-05"),
        "{e}"
    );
    let e = refused("one-off 2101-01-02 A day off too far (Pārāk tāla brīvdiena)\n");
    assert!(
        e.message
            .contains("2101-01-02 is outside the calendar's years 2000–2100"),
        "{e}"
    );
    // A day off named in English only: the Latvian pages could not name it.
    let e = refused("one-off 2030-01-02 A day off by law\n");
    assert!(e.message.contains("Latvian name in parentheses"), "{e}");
    let e = refused("transfer 2100-12-31 2101-01-01\n");
    assert!(e.message.contains("outside"), "{e}");
    // The same transfer twice is one transfer; cancelling it frees the day and the Saturday.
    Calendar::with_overrides(&[(
        "orders.txt",
        "transfer 2027-05-03 2027-05-08\ntransfer 2027-05-03 2027-05-08\ncancel 2027-05-03\ntransfer 2027-05-07 2027-05-08\n",
    )])
    .expect("one calendar");
    // A byte-order mark is no part of the first line.
    let bom = Calendar::with_overrides(&[(
        "orders.txt",
        "\u{feff}transfer 2027-05-03 2027-05-08 Cabinet order\n",
    )])
    .expect("a file saved with a byte-order mark");
    assert!(!bom.is_working_day(date(2027, 5, 3)).unwrap());
    // A deadline counted back past 2000-01-01 names the date it reached.
    let e = cal()
        .nth_working_day_before(date(2000, 1, 3), 5)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "1999-12-31 is outside the calendar's years 2000–2100"
    );
    let e = cal()
        .nth_working_day_after(date(2100, 12, 28), 5)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "2101-01-01 is outside the calendar's years 2000–2100"
    );
}

/// Every holiday the calendar knows, the law's and the data file's, is named in Latvian for
/// the Latvian pages (the Latvian part of "English (Latvian)"), and in both in English.
#[test]
fn every_holiday_has_its_latvian_name() {
    let c = cal();
    let mut d = date(2000, 1, 1);
    let mut holidays = 0;
    while d < date(2100, 12, 31) {
        if let Day::Holiday { name } | Day::MovedHoliday { name, .. } = c.day(d).unwrap() {
            let (en, lv) = name
                .strip_suffix(')')
                .and_then(|n| n.rsplit_once(" ("))
                .unwrap_or_else(|| panic!("{d}: {name}"));
            let said = c.day(d).unwrap().describe_lv();
            assert!(said.contains(lv) && !said.contains(en), "{d}: {said}");
            holidays += 1;
        }
        d = d.tomorrow().unwrap();
    }
    assert!(holidays > 1500, "{holidays}");
    // The one-off days and a Song and Dance Celebration's final day, from the data file.
    for (day, lv) in [
        (date(2018, 9, 24), "Pāvesta Franciska vizīte Latvijā"),
        (
            date(2023, 7, 10),
            "Dziesmu un deju svētku noslēguma diena: XXVII Dziesmu",
        ),
    ] {
        let said = c.day(day).unwrap().describe_lv();
        assert!(said.contains(lv), "{day}: {said}");
    }
}
