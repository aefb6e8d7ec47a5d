//! `studyflow calendar YEAR` and `studyflow calendar deadline`.

use anyhow::Context as _;
use jiff::civil::Date;
use studyflow_calendar::{Calendar, Day, Reading};

use crate::Context;
use crate::{CalendarArgs, CalendarCommand};

pub fn run(args: &CalendarArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let calendar = load(&args.overrides)?;
    let text = match (&args.command, args.year) {
        (
            Some(CalendarCommand::Deadline {
                working_days,
                before,
                strict,
            }),
            _,
        ) => {
            let event: Date = before
                .parse()
                .with_context(|| format!("`{before}` is not a date (YYYY-MM-DD)"))?;
            deadline(&calendar, event, *working_days, *strict)?
        }
        (None, Some(year)) => year_listing(&calendar, year)?,
        (None, None) => anyhow::bail!("give a YEAR, or `deadline --working-days N --before DATE`"),
    };
    ctx.out.write_all(text.as_bytes())?;
    ctx.out.flush()?;
    Ok(crate::EXIT_OK)
}

/// The shipped calendar with the override files applied in order.
pub fn load(overrides: &[std::path::PathBuf]) -> anyhow::Result<Calendar> {
    let mut texts = Vec::new();
    for path in overrides {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        texts.push((path.display().to_string(), text));
    }
    let refs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Ok(Calendar::with_overrides(&refs)?)
}

fn weekday(d: Date) -> String {
    format!("{:?}", d.weekday()).chars().take(3).collect()
}

fn year_listing(calendar: &Calendar, year: i16) -> anyhow::Result<String> {
    let days = calendar.year(year)?;
    let mut out = format!(
        "Latvian working-day calendar {year} (data {})\n",
        calendar.version()
    );
    for (d, day) in &days {
        let kind = if day.is_working() {
            "working"
        } else {
            "day off"
        };
        out.push_str(&format!(
            "{d} {}  {kind:<7}  {}\n",
            weekday(*d),
            day.describe()
        ));
    }
    let first = jiff::civil::date(year, 1, 1);
    let next = jiff::civil::date(year + 1, 1, 1);
    let working = if year < studyflow_calendar::LAST_YEAR {
        calendar.working_days_between(first, next)?
    } else {
        calendar.working_days_between(first, jiff::civil::date(year, 12, 31))?
            + i64::from(calendar.is_working_day(jiff::civil::date(year, 12, 31))?)
    };
    let weekdays_off = days
        .iter()
        .filter(|(d, day)| {
            !day.is_working()
                && !matches!(
                    d.weekday(),
                    jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
                )
        })
        .count();
    let saturdays = days
        .iter()
        .filter(|(_, day)| matches!(day, Day::WorkingSaturday { .. }))
        .count();
    out.push_str(&format!(
        "{working} working days; {weekdays_off} weekdays off; {saturdays} working Saturday{}\n",
        if saturdays == 1 { "" } else { "s" }
    ));
    Ok(out)
}

fn deadline(calendar: &Calendar, event: Date, n: u32, strict: bool) -> anyhow::Result<String> {
    let reading = if strict {
        Reading::ClearWorkingDays
    } else {
        Reading::NthWorkingDayBefore
    };
    let d = calendar.deadline_before(event, n, reading)?;
    let how = match reading {
        Reading::NthWorkingDayBefore => format!(
            "the {n}{} working day before {event} {}, that day not counted (Regulation (EEC, Euratom) No 1182/71, Art. 3(1))",
            ordinal(n),
            weekday(event)
        ),
        Reading::ClearWorkingDays => format!(
            "{n} clear working days before {event} {} (the stricter reading: one working day earlier)",
            weekday(event)
        ),
    };
    let mut out = format!(
        "{} {} is the latest allowed date: {how}.\n",
        d.date,
        weekday(d.date)
    );
    out.push_str("From the event backwards:\n");
    let mut rows: Vec<(Date, Option<usize>, String)> = d
        .counted
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let why = match calendar.day(*day) {
                Ok(Day::WorkingSaturday { instead_of }) => {
                    format!("working Saturday, in place of {instead_of}")
                }
                _ => String::new(),
            };
            (*day, Some(i + 1), why)
        })
        .chain(
            d.skipped
                .iter()
                .map(|(day, kind)| (*day, None, kind.describe())),
        )
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    for (day, count, why) in rows {
        let count = count.map_or_else(|| "  -".to_owned(), |c| format!("{c:>3}"));
        out.push_str(format!("{count}  {day} {}  {why}\n", weekday(day)).trim_end());
        out.push('\n');
    }
    out.push_str(&format!("Calendar data: {}\n", calendar.version()));
    Ok(out)
}

fn ordinal(n: u32) -> &'static str {
    match (n % 10, n % 100) {
        (1, r) if r != 11 => "st",
        (2, r) if r != 12 => "nd",
        (3, r) if r != 13 => "rd",
        _ => "th",
    }
}
