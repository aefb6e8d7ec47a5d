//! The holidays the law fixes by rule (law "Par svētku, atceres un atzīmējamām dienām",
//! Section 1): fixed dates, Easter (Western computus), their start years, and the rule that
//! moves 4 May, 18 November and the Song and Dance Celebration final day to the next working
//! day when they fall on a weekend (since 2007).

use jiff::civil::{Date, Weekday, date};

/// A holiday of a year, before transfers and moves are applied.
#[derive(Debug, Clone)]
pub(crate) struct Holiday {
    pub date: Date,
    pub name: String,
    /// Whether it moves to the next working day when it falls on a weekend.
    pub moves: bool,
}

/// Easter Sunday (Gregorian; the anonymous algorithm of Meeus/Jones/Butcher).
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // month is 3 or 4 and day 1..=31 by construction.
    date(year, month as i8, day as i8)
}

fn offset(d: Date, days: i32) -> Date {
    d.checked_add(jiff::Span::new().days(days)).unwrap_or(d)
}

/// The rule-made holidays of `year`; `festival` is that year's Song and Dance Celebration
/// final day, from data.
pub(crate) fn holidays(year: i16, festival: Option<(Date, &str)>) -> Vec<Holiday> {
    let h = |month: i8, day: i8, name: &str, moves: bool| Holiday {
        date: date(year, month, day),
        name: name.to_owned(),
        moves,
    };
    let easter = easter_sunday(year);
    let moving_rule = year >= 2007;
    let mut out = vec![
        h(1, 1, "New Year's Day (Jaungada diena)", false),
        Holiday {
            date: offset(easter, -2),
            name: "Good Friday (Lielā Piektdiena)".into(),
            moves: false,
        },
        Holiday {
            date: easter,
            name: "Easter Sunday (Lieldienas)".into(),
            moves: false,
        },
        Holiday {
            date: offset(easter, 1),
            name: "Easter Monday (Otrās Lieldienas)".into(),
            moves: false,
        },
        h(
            5,
            1,
            "Labour Day; Convocation of the Constituent Assembly (Darba svētki, Satversmes sapulces sasaukšanas diena)",
            false,
        ),
        Holiday {
            date: second_sunday_of_may(year),
            name: "Mother's Day (Mātes diena)".into(),
            moves: false,
        },
        Holiday {
            date: offset(easter, 49),
            name: "Whit Sunday (Vasarsvētki)".into(),
            moves: false,
        },
        h(6, 23, "Midsummer Eve (Līgo diena)", false),
        h(6, 24, "Midsummer Day (Jāņu diena)", false),
        h(
            11,
            18,
            "Proclamation of the Republic of Latvia (Latvijas Republikas proklamēšanas diena)",
            moving_rule,
        ),
        h(12, 25, "Christmas Day (Ziemassvētki)", false),
        h(
            12,
            26,
            "Second Day of Christmas (Otrie Ziemassvētki)",
            false,
        ),
        h(12, 31, "New Year's Eve (Vecgada diena)", false),
    ];
    if year >= 2002 {
        out.push(h(5, 4, "Restoration of Independence (Latvijas Republikas Neatkarības deklarācijas pasludināšanas diena)", moving_rule));
    }
    if year >= 2007 {
        out.push(h(12, 24, "Christmas Eve (Ziemassvētku vakars)", false));
    }
    if year >= 2018
        && let Some((d, name)) = festival
    {
        out.push(Holiday {
            date: d,
            name: {
                let (en, lv) = crate::split_name(name);
                format!(
                    "Final day of the Song and Dance Celebration: {en} (Dziesmu un deju svētku noslēguma diena: {})",
                    lv.unwrap_or(en)
                )
            },
            moves: true,
        });
    }
    out.sort_by_key(|h| h.date);
    out
}

fn second_sunday_of_may(year: i16) -> Date {
    let first = date(year, 5, 1);
    let to_sunday = (7 - first.weekday().to_monday_zero_offset() + 6) % 7;
    offset(first, i32::from(to_sunday) + 7)
}

pub(crate) fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easter_matches_known_dates() {
        // Western Easter dates (published tables).
        for (y, m, d) in [
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
        ] {
            assert_eq!(easter_sunday(y), date(y, m, d), "{y}");
        }
    }

    #[test]
    fn mothers_day_is_the_second_sunday_of_may() {
        assert_eq!(second_sunday_of_may(2026), date(2026, 5, 10));
        assert_eq!(second_sunday_of_may(2027), date(2027, 5, 9));
        assert_eq!(second_sunday_of_may(2022), date(2022, 5, 8));
    }
}
