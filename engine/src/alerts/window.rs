//! A weekly time window in the site's time: some days of the week, from one time of day to another.
//! A window whose end comes before its start runs overnight, and belongs to the day it starts on.

use jiff::civil::{DateTime, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(w: Weekday) -> Day {
        match w {
            Weekday::Monday => Day::Mon,
            Weekday::Tuesday => Day::Tue,
            Weekday::Wednesday => Day::Wed,
            Weekday::Thursday => Day::Thu,
            Weekday::Friday => Day::Fri,
            Weekday::Saturday => Day::Sat,
            Weekday::Sunday => Day::Sun,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Empty: every day.
    #[serde(default)]
    pub days: Vec<Day>,
    /// `HH:MM`, 24-hour.
    pub start: String,
    /// `HH:MM`, 24-hour, the last minute inside the window.
    pub end: String,
}

/// Minutes since midnight of an `HH:MM` time.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl Window {
    pub fn validate(&self) -> Result<(), String> {
        for (what, t) in [("start", &self.start), ("end", &self.end)] {
            if minutes(t).is_none() {
                return Err(format!("{what} must be a time HH:MM from 00:00 to 23:59, not {t:?}"));
            }
        }
        Ok(())
    }

    fn on(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&Day::of(day))
    }

    /// Whether the site-time moment `at` falls inside the window.
    pub fn contains(&self, at: DateTime) -> bool {
        let (Some(start), Some(end)) = (minutes(&self.start), minutes(&self.end)) else { return false };
        let now = at.hour() as u16 * 60 + at.minute() as u16;
        let today = at.weekday();
        if start <= end {
            self.on(today) && (start..=end).contains(&now)
        } else {
            // Overnight: the evening part today, or the morning part of a window that began yesterday.
            (self.on(today) && now >= start) || (self.on(today.previous()) && now <= end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn window(days: &[Day], start: &str, end: &str) -> Window {
        Window { days: days.to_vec(), start: start.into(), end: end.into() }
    }

    #[test]
    fn a_daytime_window_holds_its_end_minute_on_its_days_only() {
        let office = window(&[Day::Mon, Day::Fri], "09:00", "17:30");
        let monday = date(2026, 12, 7);
        assert!(office.contains(monday.at(9, 0, 0, 0)));
        assert!(office.contains(monday.at(17, 30, 59, 0)));
        assert!(!office.contains(monday.at(17, 31, 0, 0)));
        assert!(!office.contains(monday.at(8, 59, 59, 0)));
        assert!(!office.contains(date(2026, 12, 8).at(12, 0, 0, 0)), "Tuesday");
    }

    #[test]
    fn an_overnight_window_belongs_to_the_day_it_starts() {
        let friday_night = window(&[Day::Fri], "22:00", "06:00");
        assert!(friday_night.contains(date(2026, 12, 11).at(23, 0, 0, 0)), "Friday evening");
        assert!(friday_night.contains(date(2026, 12, 12).at(5, 59, 0, 0)), "Saturday early morning");
        assert!(!friday_night.contains(date(2026, 12, 12).at(23, 0, 0, 0)), "Saturday evening");
        assert!(!friday_night.contains(date(2026, 12, 11).at(5, 0, 0, 0)), "Friday early morning");
        assert!(window(&[], "22:00", "06:00").contains(date(2026, 12, 7).at(2, 0, 0, 0)));
    }

    #[test]
    fn times_must_be_hh_mm() {
        for bad in ["24:00", "9:00", "09:60", "0900", "", "09:00:00"] {
            assert!(window(&[], bad, "10:00").validate().is_err(), "{bad}");
        }
        assert!(window(&[], "00:00", "23:59").validate().is_ok());
    }
}
