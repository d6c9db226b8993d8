//! Alert rules: which appearances are announced, and where. A rule picks appearances by person or
//! group, camera, weekly time window (site time) and unknown identity, and sends them to the live
//! events, webhooks or MQTT. Rules never delay or drop what is stored (`crate::storage`).

pub mod book;
pub mod live_event;
pub mod rule;
pub mod site;
pub mod window;

pub use book::{Routing, RuleBook, RuleRef, SharedRules};
pub use live_event::{Grouped, LiveEvent};
pub use rule::{is_group_name, AlertRule, Output, RuleError, RuleSource, RuleSpec, Who};
pub use site::{AlertsConfig, AlertsConfigError};
pub use window::{Day, Window};
