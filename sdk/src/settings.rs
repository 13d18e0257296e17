//! Typed access to the configuration subtree a plugin asked for.

use crate::wit_plugin::SettingValue;

/// A configuration value as the user typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl Value {
    pub(crate) fn into_wit(self) -> SettingValue {
        match self {
            Value::Bool(b) => SettingValue::Boolean(b),
            Value::Int(i) => SettingValue::Integer(i),
            Value::Text(t) => SettingValue::Text(t),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(t: &str) -> Self {
        Value::Text(t.into())
    }
}

impl From<String> for Value {
    fn from(t: String) -> Self {
        Value::Text(t)
    }
}

/// The settings of a build, by dotted key (`iso.override_name`).
#[derive(Debug, Clone, Default)]
pub struct Settings(Vec<(String, Value)>);

impl Settings {
    /// Settings from `(key, value)` pairs (the test host's).
    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub(crate) fn from_pairs(pairs: Vec<(String, Value)>) -> Self {
        Settings(pairs)
    }

    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub(crate) fn from_wit(settings: Vec<crate::wit_plugin::Setting>) -> Self {
        Settings(
            settings
                .into_iter()
                .map(|s| {
                    let value = match s.value {
                        SettingValue::Boolean(b) => Value::Bool(b),
                        SettingValue::Integer(i) => Value::Int(i),
                        SettingValue::Text(t) => Value::Text(t),
                    };
                    (s.key, value)
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A boolean; `"true"`/`"false"` text counts too.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Text(t) if t.eq_ignore_ascii_case("true") => Some(true),
            Value::Text(t) if t.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// An integer; decimal text counts too.
    pub fn get_int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(i) => Some(*i),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Bool(_) => None,
        }
    }

    /// Any value rendered as text.
    pub fn get_str(&self, key: &str) -> Option<String> {
        Some(match self.get(key)? {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Text(t) => t.clone(),
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}
