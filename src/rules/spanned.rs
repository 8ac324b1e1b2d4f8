//! [`Sp`]: a value of a rules file with the line and column it was written
//! at, so that every problem found later can say where.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A value with the line and column it was written at.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

impl<T> Sp<T> {
    /// A value with no known location (from a shorthand form).
    pub fn unlocated(value: T) -> Self {
        Sp {
            value,
            line: 0,
            column: 0,
        }
    }

    /// This location, or `fallback`'s when this one is unknown.
    pub fn at_or<U>(&self, fallback: &Sp<U>) -> (u64, u64) {
        if self.line > 0 {
            (self.line, self.column)
        } else {
            (fallback.line, fallback.column)
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Sp {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            value: spanned.value,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}
