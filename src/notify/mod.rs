//! Notifications: Slack, Discord, email, generic webhook and healthchecks-style pings.

pub mod template;
