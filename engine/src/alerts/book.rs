//! The rules in force, and what they decide for one live event: which rules it meets (its alerts)
//! and which outputs it reaches. With no enabled rule every appearance reaches every output as it
//! begins, as before rules existed; with one, only what some rule picks, and only where that rule
//! sends it. The stored row is never touched: rules decide what is announced, not what is kept.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use jiff::tz::TimeZone;
use serde::Serialize;

use super::live_event::LiveEvent;
use super::rule::{AlertRule, Output, Who};
use super::site::AlertsConfig;
use crate::storage::{StorageError, Store};

/// A rule an event met, as the event names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub id: Option<i64>,
    pub name: String,
}

/// What the rules decided for one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    pub alerts: Vec<RuleRef>,
    outputs: HashSet<Output>,
}

impl Routing {
    pub fn reaches(&self, output: Output) -> bool {
        self.outputs.contains(&output)
    }
}

pub struct RuleBook {
    timezone: TimeZone,
    timezone_name: String,
    rules: Vec<AlertRule>,
    /// Persons' groups, lower case, for the rules that name groups.
    groups: HashMap<i64, Vec<String>>,
}

impl RuleBook {
    pub fn new(timezone: TimeZone, timezone_name: String, rules: Vec<AlertRule>) -> RuleBook {
        RuleBook { timezone, timezone_name, rules, groups: HashMap::new() }
    }

    pub fn with_groups(mut self, groups: HashMap<i64, Vec<String>>) -> RuleBook {
        self.groups = groups.into_iter().map(|(p, g)| (p, g.into_iter().map(|g| g.to_lowercase()).collect())).collect();
        self
    }

    /// The site's time zone as the API shows it (an IANA name where there is one).
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// Whether any enabled rule names groups (only then are persons' groups worth reading).
    pub fn uses_groups(&self) -> bool {
        self.rules.iter().any(|r| r.spec.enabled && !r.spec.groups.is_empty())
    }

    /// Whether any enabled rule waits for unknown identities (only then is a grouped appearance
    /// worth announcing).
    pub fn wants_identities(&self) -> bool {
        self.rules.iter().any(|r| r.spec.enabled && r.spec.needs_identity())
    }

    /// The site-time moment of an instant.
    pub fn local(&self, at: DateTime<Utc>) -> jiff::civil::DateTime {
        match jiff::Timestamp::from_microsecond(at.timestamp_micros()) {
            Ok(ts) => self.timezone.to_datetime(ts),
            Err(_) => jiff::civil::DateTime::default(),
        }
    }

    /// Distinct site-time days among these instants.
    pub fn days_among(&self, instants: &[DateTime<Utc>]) -> u32 {
        instants.iter().map(|&t| self.local(t).date()).collect::<HashSet<_>>().len() as u32
    }

    pub fn route(&self, event: &LiveEvent) -> Routing {
        let enabled: Vec<&AlertRule> = self.rules.iter().filter(|r| r.spec.enabled).collect();
        if enabled.is_empty() {
            // No rules: every appearance as it begins, nothing at its grouping (as before rules).
            let outputs = if event.grouped.is_none() { Output::ALL.into_iter().collect() } else { HashSet::new() };
            return Routing { alerts: Vec::new(), outputs };
        }
        let mut routing = Routing::default();
        let local = self.local(event.detection.detected_at);
        for rule in enabled {
            if self.picks(rule, event, local) {
                routing.alerts.push(RuleRef { id: rule.id, name: rule.spec.name.clone() });
                routing.outputs.extend(rule.spec.outputs.iter().copied());
            }
        }
        routing
    }

    fn picks(&self, rule: &AlertRule, event: &LiveEvent, local: jiff::civil::DateTime) -> bool {
        let (spec, d) = (&rule.spec, &event.detection);
        if !spec.camera_ids.is_empty() && !spec.camera_ids.contains(&d.camera_id) {
            return false;
        }
        if !spec.windows.is_empty() && !spec.windows.iter().any(|w| w.contains(local)) {
            return false;
        }
        // A rule judges each appearance once: when it begins, or, for identity rules, at its grouping.
        if spec.needs_identity() != event.grouped.is_some() {
            return false;
        }
        match spec.who {
            Who::Anyone => true,
            Who::Known => {
                let Some(person) = d.person_id else { return false };
                if spec.min_score.is_some_and(|min| d.score < min) {
                    return false;
                }
                if spec.person_ids.is_empty() && spec.groups.is_empty() {
                    return true;
                }
                spec.person_ids.contains(&person)
                    || self
                        .groups
                        .get(&person)
                        .is_some_and(|theirs| spec.groups.iter().any(|g| theirs.contains(&g.to_lowercase())))
            }
            Who::Unknown => {
                if d.person_id.is_some() {
                    return false;
                }
                match &event.grouped {
                    None => true,
                    Some(g) => {
                        (spec.unknown_ids.is_empty() || spec.unknown_ids.contains(&g.unknown_id))
                            && g.days >= spec.min_days
                    }
                }
            }
        }
    }
}

/// The rule book in force, replaced whole when rules change (readers keep the one they hold).
#[derive(Clone)]
pub struct SharedRules(Arc<RwLock<Arc<RuleBook>>>);

impl SharedRules {
    pub fn new(book: RuleBook) -> SharedRules {
        SharedRules(Arc::new(RwLock::new(Arc::new(book))))
    }

    pub fn current(&self) -> Arc<RuleBook> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, book: RuleBook) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(book);
    }

    /// Reads the rules again (`AlertsConfig::load`) and puts them in force; when they cannot be
    /// read, the ones in force stay.
    pub async fn refresh(&self, config: &AlertsConfig, store: &Store) -> Result<(), StorageError> {
        self.replace(config.load(store).await?);
        Ok(())
    }
}

impl Default for SharedRules {
    fn default() -> Self {
        SharedRules::new(RuleBook::new(TimeZone::UTC, "UTC".into(), Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::live_event::Grouped;
    use super::super::rule::{RuleSource, RuleSpec};
    use super::*;
    use crate::geometry::BBox;
    use crate::storage::NewDetection;

    fn rule(id: i64, json: &str) -> AlertRule {
        let spec: RuleSpec = serde_json::from_str(json).unwrap();
        spec.validate().unwrap();
        AlertRule { id: Some(id), source: RuleSource::Api, spec, updated_at: None, updated_by: None }
    }

    fn book(rules: Vec<AlertRule>) -> RuleBook {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        RuleBook::new(paris, "Europe/Paris".into(), rules).with_groups(HashMap::from([(7, vec!["Staff".into()])]))
    }

    /// At `hh:mm` Paris time on Monday 2026-12-07 (UTC+1 then).
    fn seen(camera: i64, person: Option<i64>, score: f32, hh: u32, mm: u32) -> LiveEvent {
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2026-12-07T{hh:02}:{mm:02}:00+01:00")).unwrap();
        NewDetection::single(
            camera,
            at.with_timezone(&Utc),
            person,
            score,
            0.9,
            BBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 },
        )
        .into()
    }

    fn names(r: &Routing) -> Vec<&str> {
        r.alerts.iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn without_rules_every_appearance_reaches_every_output_as_it_begins() {
        let b = book(vec![rule(1, r#"{"name": "off", "enabled": false}"#)]);
        let r = b.route(&seen(1, None, 0.0, 12, 0));
        assert!(Output::ALL.iter().all(|&o| r.reaches(o)) && r.alerts.is_empty());
        let mut grouped = seen(1, None, 0.0, 12, 0);
        grouped.grouped = Some(Grouped { unknown_id: 3, days: 1 });
        assert!(!b.route(&grouped).reaches(Output::Events));
    }

    #[test]
    fn a_rule_picks_by_person_group_camera_score_and_site_time() {
        let b = book(vec![
            rule(1, r#"{"name": "vip", "person_ids": [5], "min_score": 0.5, "outputs": ["mqtt"]}"#),
            rule(
                2,
                r#"{"name": "staff at night", "groups": ["staff"], "camera_ids": [2],
                        "windows": [{"start": "22:00", "end": "06:00"}], "outputs": ["webhooks"]}"#,
            ),
        ]);
        let r = b.route(&seen(1, Some(5), 0.6, 12, 0));
        assert_eq!(names(&r), ["vip"]);
        assert!(r.reaches(Output::Mqtt) && !r.reaches(Output::Events) && !r.reaches(Output::Webhooks));
        assert!(names(&b.route(&seen(1, Some(5), 0.4, 12, 0))).is_empty(), "below min_score");
        assert_eq!(names(&b.route(&seen(2, Some(7), 0.4, 23, 0))), ["staff at night"]);
        assert!(names(&b.route(&seen(2, Some(7), 0.4, 21, 0))).is_empty(), "21:00 Paris is outside");
        assert!(names(&b.route(&seen(1, Some(7), 0.4, 23, 0))).is_empty(), "another camera");
        assert!(names(&b.route(&seen(2, Some(8), 0.4, 23, 0))).is_empty(), "not in the group");
        let nobody = b.route(&seen(2, None, 0.0, 23, 0));
        assert!(nobody.alerts.is_empty() && !Output::ALL.iter().any(|&o| nobody.reaches(o)));
    }

    #[test]
    fn unknown_identity_rules_judge_at_the_grouping_plain_unknown_rules_at_the_start() {
        let b = book(vec![
            rule(1, r#"{"name": "stranger at the back door", "who": "unknown", "camera_ids": [3]}"#),
            rule(2, r#"{"name": "three nights", "who": "unknown", "min_days": 3}"#),
        ]);
        assert_eq!(names(&b.route(&seen(3, None, 0.0, 2, 0))), ["stranger at the back door"]);
        assert!(names(&b.route(&seen(3, Some(1), 0.9, 2, 0))).is_empty(), "a known face");
        let mut grouped = seen(3, None, 0.0, 2, 0);
        grouped.grouped = Some(Grouped { unknown_id: 9, days: 2 });
        assert!(names(&b.route(&grouped)).is_empty(), "two days only");
        grouped.grouped = Some(Grouped { unknown_id: 9, days: 3 });
        assert_eq!(names(&b.route(&grouped)), ["three nights"]);
        assert!(b.wants_identities());
    }

    #[test]
    fn days_are_counted_in_site_time() {
        let b = book(Vec::new());
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 23:30 UTC is already the next day in Paris.
        assert_eq!(b.days_among(&[t("2026-12-07T22:00:00Z"), t("2026-12-07T23:30:00Z")]), 2);
        assert_eq!(b.days_among(&[t("2026-12-07T08:00:00Z"), t("2026-12-07T20:00:00Z")]), 1);
    }
}
