//! `[alerts]`: the site's time zone and the rules set in the config file, and the rule book read
//! from both with the rules stored through the API.

use std::collections::HashSet;

use jiff::tz::TimeZone;
use serde::Deserialize;

use super::book::RuleBook;
use super::rule::{AlertRule, RuleError, RuleSource, RuleSpec};
use crate::storage::{StorageError, Store};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The IANA time zone rules' windows and days are read in (`Europe/Paris`); empty: the
    /// machine's own.
    pub timezone: String,
    /// Rules that only the config file changes (the API shows them, read-only).
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsConfigError {
    #[error("alerts.timezone {name:?} is not a time zone this engine knows (an IANA name such as Europe/Paris)")]
    Timezone {
        name: String,
        #[source]
        source: jiff::Error,
    },
    #[error("alerts.rules[{index}] ({name:?})")]
    Rule {
        index: usize,
        name: String,
        #[source]
        source: RuleError,
    },
    #[error("alerts.rules[{index}]: another rule is already named {name:?}")]
    DuplicateName { index: usize, name: String },
}

impl AlertsConfig {
    /// The site's time zone and the name the API shows for it.
    pub fn site_timezone(&self) -> Result<(TimeZone, String), AlertsConfigError> {
        if self.timezone.is_empty() {
            let tz = TimeZone::system();
            let name = tz.iana_name().unwrap_or("the machine's local time").to_string();
            return Ok((tz, name));
        }
        TimeZone::get(&self.timezone)
            .map(|tz| (tz, self.timezone.clone()))
            .map_err(|source| AlertsConfigError::Timezone { name: self.timezone.clone(), source })
    }

    pub fn validate(&self) -> Result<(), AlertsConfigError> {
        self.site_timezone()?;
        let mut names = HashSet::new();
        for (index, spec) in self.rules.iter().enumerate() {
            spec.validate().map_err(|source| AlertsConfigError::Rule { index, name: spec.name.clone(), source })?;
            if !names.insert(spec.name.to_lowercase()) {
                return Err(AlertsConfigError::DuplicateName { index, name: spec.name.clone() });
            }
        }
        Ok(())
    }

    pub fn config_rules(&self) -> Vec<AlertRule> {
        self.rules
            .iter()
            .map(|spec| AlertRule {
                id: None,
                source: RuleSource::Config,
                spec: spec.clone(),
                updated_at: None,
                updated_by: None,
            })
            .collect()
    }

    /// Whether a config rule already has this name (compared without case).
    pub fn names_a_rule(&self, name: &str) -> bool {
        self.rules.iter().any(|r| r.name.to_lowercase() == name.to_lowercase())
    }

    /// The rules in force now: the config file's, then the stored ones, with the persons' groups
    /// when a rule names groups.
    pub async fn load(&self, store: &Store) -> Result<RuleBook, StorageError> {
        let (tz, name) = self.site_timezone().unwrap_or_else(|_| (TimeZone::UTC, "UTC".into()));
        let mut rules = self.config_rules();
        rules.extend(store.list_alert_rules().await?);
        let book = RuleBook::new(tz, name, rules);
        if !book.uses_groups() {
            return Ok(book);
        }
        let groups = store.person_groups().await?;
        Ok(book.with_groups(groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_time_zone_or_rule_or_a_twice_used_name_is_refused_naming_it() {
        let tz = AlertsConfig { timezone: "Mars/Olympus".into(), rules: Vec::new() };
        assert!(tz.validate().unwrap_err().to_string().contains("Mars/Olympus"));
        let rule = |name: &str| serde_json::from_value::<RuleSpec>(serde_json::json!({ "name": name })).unwrap();
        let twice = AlertsConfig { timezone: "UTC".into(), rules: vec![rule("Door"), rule("door")] };
        assert!(matches!(twice.validate(), Err(AlertsConfigError::DuplicateName { index: 1, .. })));
        let mut bad = rule("x");
        bad.min_days = 0;
        let bad = AlertsConfig { timezone: String::new(), rules: vec![bad] };
        assert!(matches!(bad.validate(), Err(AlertsConfigError::Rule { index: 0, .. })));
        assert!(AlertsConfig::default().validate().is_ok());
    }
}
