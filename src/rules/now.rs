//! `{{ now }}` in templates: a moment in the rule's zone that renders as
//! ISO 8601 and offers its parts (`now.hour`, `now.weekday`, …) as
//! attributes. It reads no clock: the evaluation hands it its time.

use std::fmt;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

/// `{{ now }}`: a moment in the rule's zone, with its parts as attributes.
#[derive(Debug)]
pub struct Now(pub jiff::Zoned);

impl Object for Now {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let z = &self.0;
        Some(match key.as_str()? {
            "year" => Value::from(z.year()),
            "month" => Value::from(z.month()),
            "day" => Value::from(z.day()),
            "hour" => Value::from(z.hour()),
            "minute" => Value::from(z.minute()),
            "second" => Value::from(z.second()),
            // ISO weekday: Monday 1 … Sunday 7.
            "weekday" => Value::from(z.weekday().to_monday_one_offset()),
            "weekday_name" => Value::from(weekday_name(z.weekday())),
            "date" => Value::from(z.date().to_string()),
            // The next civil day in the rule's zone (23 or 25 hours away across DST).
            "tomorrow" => Value::from(z.date().tomorrow().ok()?.to_string()),
            "yesterday" => Value::from(z.date().yesterday().ok()?.to_string()),
            "time" => Value::from(z.strftime("%H:%M").to_string()),
            "timestamp" => Value::from(z.timestamp().as_second()),
            "iso" => Value::from(iso(z)),
            "timezone" => Value::from(z.time_zone().iana_name().unwrap_or("UTC")),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&NOW_FIELDS)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&iso(&self.0))
    }
}

/// The attributes of `now`, for `undeclared_variables` checks and enumeration.
pub const NOW_FIELDS: [&str; 15] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "weekday",
    "weekday_name",
    "date",
    "tomorrow",
    "yesterday",
    "time",
    "timestamp",
    "iso",
    "timezone",
];

fn iso(z: &jiff::Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn weekday_name(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match w {
        Monday => "Monday",
        Tuesday => "Tuesday",
        Wednesday => "Wednesday",
        Thursday => "Thursday",
        Friday => "Friday",
        Saturday => "Saturday",
        Sunday => "Sunday",
    }
}
