//! One alert rule: which appearances it picks (who, where, when) and which outputs it sends them to.
//! Rules come from the API (stored in PostgreSQL) or from `[[alerts.rules]]` in the config file.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::window::Window;

/// Whom a rule is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// Recognised persons: any, or those named by `person_ids` or `groups`.
    #[default]
    Known,
    /// Faces that match nobody; with `unknown_ids` or `min_days` above 1, their unknown identities.
    Unknown,
    /// Every appearance.
    Anyone,
}

/// Where a rule's appearances go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The live event stream: Server-Sent Events, WebSocket, and so the console's live alerts.
    Events,
    Webhooks,
    Mqtt,
}

impl Output {
    pub const ALL: [Output; 3] = [Output::Events, Output::Webhooks, Output::Mqtt];
}

fn enabled_default() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn all_outputs() -> Vec<Output> {
    Output::ALL.to_vec()
}

/// What an operator writes: the body of `POST`/`PUT /api/v1/alert-rules`, or one
/// `[[alerts.rules]]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    #[serde(default)]
    pub who: Who,
    /// `known` only: these persons (with `groups`: either). Empty: any recognised person.
    #[serde(default)]
    pub person_ids: Vec<i64>,
    /// `known` only: persons in any of these groups (compared without case).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `known` only: the appearance's score at least this.
    #[serde(default)]
    pub min_score: Option<f32>,
    /// `unknown` only: these unknown identities.
    #[serde(default)]
    pub unknown_ids: Vec<i64>,
    /// `unknown` only: the identity seen on at least this many distinct days (site time).
    #[serde(default = "one")]
    pub min_days: u32,
    /// Empty: every camera.
    #[serde(default)]
    pub camera_ids: Vec<i64>,
    /// Empty: at any time.
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default = "all_outputs")]
    pub outputs: Vec<Output>,
}

/// Where a rule was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    Api,
    /// `[[alerts.rules]]`: read-only through the API.
    Config,
}

/// A rule as the engine holds it and the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRule {
    /// `None` for a rule from the config file.
    pub id: Option<i64>,
    pub source: RuleSource,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

/// A rule that cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: String,
}

fn refuse(field: impl Into<String>, problem: impl Into<String>) -> RuleError {
    RuleError { field: field.into(), problem: problem.into() }
}

pub const MAX_NAME_CHARS: usize = 100;

/// A name persons are grouped by, as a person's groups and a rule's hold it: not blank, at most 64
/// characters, none a control character.
pub fn is_group_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control)
}
/// Bounds on a rule's lists: a rule is read for every appearance.
pub const MAX_LIST: usize = 1000;

impl RuleSpec {
    /// Checks what the engine cannot check while matching: sensible values, and no condition that
    /// does not apply to the rule's `who` (it would be silently ignored).
    pub fn validate(&self) -> Result<(), RuleError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(refuse("name", format!("must be 1 to {MAX_NAME_CHARS} printable characters")));
        }
        if name != self.name {
            return Err(refuse("name", "may not begin or end with spaces"));
        }
        for (field, len) in [
            ("person_ids", self.person_ids.len()),
            ("groups", self.groups.len()),
            ("unknown_ids", self.unknown_ids.len()),
            ("camera_ids", self.camera_ids.len()),
            ("windows", self.windows.len()),
        ] {
            if len > MAX_LIST {
                return Err(refuse(field, format!("at most {MAX_LIST} entries")));
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            if !is_group_name(g) {
                return Err(refuse(format!("groups[{i}]"), "must be 1 to 64 printable characters"));
            }
        }
        for (field, ids) in
            [("person_ids", &self.person_ids), ("unknown_ids", &self.unknown_ids), ("camera_ids", &self.camera_ids)]
        {
            if let Some(i) = ids.iter().position(|&id| id <= 0) {
                return Err(refuse(format!("{field}[{i}]"), "must be a positive id"));
            }
        }
        if let Some(s) = self.min_score {
            if !(-1.0..=1.0).contains(&s) {
                return Err(refuse("min_score", "must be between -1 and 1"));
            }
        }
        if self.min_days == 0 || self.min_days > 366 {
            return Err(refuse("min_days", "must be 1 to 366"));
        }
        for (i, w) in self.windows.iter().enumerate() {
            w.validate().map_err(|problem| refuse(format!("windows[{i}]"), problem))?;
        }
        if self.outputs.is_empty() {
            return Err(refuse("outputs", "name at least one of events, webhooks, mqtt"));
        }
        let not_for = |field: &str, who: &str| refuse(field, format!("does not apply to who = \"{who}\""));
        match self.who {
            Who::Known => {
                if !self.unknown_ids.is_empty() {
                    return Err(not_for("unknown_ids", "known"));
                }
                if self.min_days != 1 {
                    return Err(not_for("min_days", "known"));
                }
            }
            Who::Unknown | Who::Anyone => {
                let who = if self.who == Who::Unknown { "unknown" } else { "anyone" };
                if !self.person_ids.is_empty() {
                    return Err(not_for("person_ids", who));
                }
                if !self.groups.is_empty() {
                    return Err(not_for("groups", who));
                }
                if self.min_score.is_some() {
                    return Err(not_for("min_score", who));
                }
                if self.who == Who::Anyone && (!self.unknown_ids.is_empty() || self.min_days != 1) {
                    return Err(not_for(if self.unknown_ids.is_empty() { "min_days" } else { "unknown_ids" }, who));
                }
            }
        }
        Ok(())
    }

    /// Whether the rule is about unknown identities, which are known only once an appearance has
    /// ended and been grouped: it is judged then, not when the appearance begins.
    pub fn needs_identity(&self) -> bool {
        self.who == Who::Unknown && (!self.unknown_ids.is_empty() || self.min_days > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> RuleSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_make_a_rule_for_every_recognised_person_everywhere_always() {
        let r = spec(r#"{"name": "watchlist"}"#);
        assert!(r.enabled);
        assert_eq!(r.who, Who::Known);
        assert_eq!(r.min_days, 1);
        assert_eq!(r.outputs, Output::ALL.to_vec());
        assert_eq!(r.validate(), Ok(()));
        assert!(!r.needs_identity());
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |json: &str| spec(json).validate().unwrap_err().field;
        assert_eq!(field(r#"{"name": ""}"#), "name");
        assert_eq!(field(r#"{"name": " x"}"#), "name");
        assert_eq!(field(r#"{"name": "x", "who": "unknown", "person_ids": [1]}"#), "person_ids");
        assert_eq!(field(r#"{"name": "x", "who": "known", "min_days": 3}"#), "min_days");
        assert_eq!(field(r#"{"name": "x", "who": "anyone", "unknown_ids": [2]}"#), "unknown_ids");
        assert_eq!(field(r#"{"name": "x", "camera_ids": [0]}"#), "camera_ids[0]");
        assert_eq!(field(r#"{"name": "x", "min_score": 2}"#), "min_score");
        assert_eq!(field(r#"{"name": "x", "outputs": []}"#), "outputs");
        assert_eq!(field(r#"{"name": "x", "groups": ["  "]}"#), "groups[0]");
        assert_eq!(field(r#"{"name": "x", "windows": [{"start": "25:00", "end": "06:00"}]}"#), "windows[0]");
        assert!(serde_json::from_str::<RuleSpec>(r#"{"name": "x", "colour": "red"}"#).is_err());
        assert!(serde_json::from_str::<RuleSpec>(r#"{"name": "x", "outputs": ["pager"]}"#).is_err());
    }

    #[test]
    fn identity_rules_wait_for_the_grouping() {
        assert!(spec(r#"{"name": "x", "who": "unknown", "min_days": 3}"#).needs_identity());
        assert!(spec(r#"{"name": "x", "who": "unknown", "unknown_ids": [4]}"#).needs_identity());
        assert!(!spec(r#"{"name": "x", "who": "unknown", "camera_ids": [1]}"#).needs_identity());
    }
}
