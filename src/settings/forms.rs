//! The forms a value takes in the file, as field types of a section's struct (see
//! [`super::section`]): each reads its value with the problems the config has always
//! given, and describes itself in the schema. A section names the form once, in its
//! field's type; its range rides in the type (`Whole<1, 600>`), so the check and the
//! schema cannot say different things.
//!
//! Also how a resolved section is shown (`check-config`): the `shown_*` functions are
//! `serialize_with` helpers for the masked view, and [`Secret`] serializes as its mask.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::Secret;
use super::check::{Checker, DURATION, parse_duration};
use super::schema::{duration, secret_schema, words};

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<const MIN: u64, const MAX: u64>(pub u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for V<MIN, MAX> {
            type Value = Whole<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number from {MIN} to {MAX}")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                if (MIN..=MAX).contains(&n) {
                    Ok(Whole(n))
                } else {
                    Err(E::custom(format_args!(
                        "expected a whole number from {MIN} to {MAX}, found {n}"
                    )))
                }
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

impl<const MIN: u64, const MAX: u64> JsonSchema for Whole<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Whole_{MIN}_{MAX}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "format": "uint64", "minimum": MIN, "maximum": MAX})
    }
}

/// A duration from `MIN` to `MAX` seconds: seconds as a number, or a string with a unit
/// (`"90s"`, `"10m"`, `"24h"`, `"2d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<const MIN: u64, const MAX: u64>(pub Duration);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Span<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> V<MIN, MAX> {
            fn check<E: de::Error>(
                &self,
                d: Option<Duration>,
                found: Value,
            ) -> Result<Span<MIN, MAX>, E> {
                match d {
                    Some(d) if d >= Duration::from_secs(MIN) && d <= Duration::from_secs(MAX) => {
                        Ok(Span(d))
                    }
                    Some(_) => Err(E::custom(format_args!(
                        "expected a duration from {MIN} s to {MAX} s, found {found}"
                    ))),
                    None => Err(E::custom(format_args!(
                        "expected {DURATION}, found {}",
                        super::check::kind(&found)
                    ))),
                }
            }
            fn seconds<E: de::Error>(&self, s: f64, found: Value) -> Result<Span<MIN, MAX>, E> {
                let d = Some(s)
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 1e9)
                    .map(Duration::from_secs_f64);
                self.check(d, found)
            }
        }
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for V<MIN, MAX> {
            type Value = Span<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DURATION)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                self.seconds(n as f64, Value::from(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                self.seconds(n as f64, Value::from(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                self.seconds(n, Value::from(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                self.check(parse_duration(s), Value::from(s))
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

impl<const MIN: u64, const MAX: u64> JsonSchema for Span<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Span_{MIN}_{MAX}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        duration(MIN, MAX)
    }
}

/// A string form of a section's own: what it is called in problems and how it is read.
pub trait TextForm {
    /// `a URL (a string)`: what a value of the wrong type was expected to be.
    const EXPECTED: &'static str;
    type Value;
    /// The value, or the problem with the text (never echoing a secret).
    fn parse(text: &str) -> Result<Self::Value, String>;
}

/// A string read as `F` says; its schema is a string's.
pub struct Text<F: TextForm>(pub F::Value);

impl<F: TextForm<Value: fmt::Debug>> fmt::Debug for Text<F> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, F: TextForm> Deserialize<'de> for Text<F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<F>(PhantomData<F>);
        impl<F: TextForm> Visitor<'_> for V<F> {
            type Value = Text<F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(F::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<F>, E> {
                F::parse(s).map(Text).map_err(E::custom)
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

impl<F: TextForm> JsonSchema for Text<F> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

/// A form that takes a value of any type and names it, as the file has it, when it is
/// wrong (`found 5`, `found "abc"`).
pub trait ValueForm {
    type Value;
    fn parse(value: Value) -> Result<Self::Value, String>;
}

/// A value read whole and checked as `F` says. The check is made inside the visitor, as
/// every form's must be: a problem returned after the deserializer is done would reach
/// no one to note it.
pub struct Checked<F: ValueForm>(pub F::Value);

impl<F: ValueForm<Value: fmt::Debug>> fmt::Debug for Checked<F> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, F: ValueForm> Deserialize<'de> for Checked<F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<F>(PhantomData<F>);
        impl<F: ValueForm> V<F> {
            fn check<E: de::Error>(v: Value) -> Result<Checked<F>, E> {
                F::parse(v).map(Checked).map_err(E::custom)
            }
        }
        impl<'de, F: ValueForm> Visitor<'de> for V<F> {
            type Value = Checked<F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Checked<F>, E> {
                Self::check(Value::from(b))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Checked<F>, E> {
                Self::check(Value::from(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Checked<F>, E> {
                Self::check(Value::from(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Checked<F>, E> {
                Self::check(Value::from(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Checked<F>, E> {
                Self::check(Value::from(s))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Checked<F>, E> {
                Self::check(Value::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, a: A) -> Result<Checked<F>, A::Error> {
                Self::check(Value::deserialize(de::value::SeqAccessDeserializer::new(
                    a,
                ))?)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<Checked<F>, A::Error> {
                Self::check(Value::deserialize(de::value::MapAccessDeserializer::new(
                    a,
                ))?)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<F: ValueForm> JsonSchema for Checked<F> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Value".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Value::json_schema(generator)
    }
}

/// A string that is not empty or blank.
pub struct NonBlank;

impl TextForm for NonBlank {
    const EXPECTED: &'static str = "a string";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        if text.trim().is_empty() {
            return Err("expected a non-empty string".into());
        }
        Ok(text.to_string())
    }
}

/// `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Flag, E> {
                Ok(Flag(b))
            }
        }
        d.deserialize_bool(V)
    }
}

impl JsonSchema for Flag {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        bool::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        bool::json_schema(generator)
    }
}

/// A fixed set of words a key takes, in any case, each standing for a value.
pub trait Choices: Copy + 'static {
    const CHOICES: &'static [(&'static str, Self)];
}

/// One of `C`'s words, in any case (not trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<C>(pub C);

impl<'de, C: Choices> Deserialize<'de> for Word<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<C>(PhantomData<C>);
        impl<C: Choices> Visitor<'_> for V<C> {
            type Value = Word<C>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                if let Some((_, c)) = C::CHOICES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
                    return Ok(Word(*c));
                }
                let names: Vec<String> = C::CHOICES.iter().map(|(n, _)| format!("{n:?}")).collect();
                Err(E::custom(format_args!(
                    "expected one of {}, found {s:?}",
                    names.join(", ")
                )))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

impl<C: Choices> JsonSchema for Word<C> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Word".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = C::CHOICES.iter().map(|(n, _)| *n).collect();
        words(&names, false)
    }
}

/// A secret as the file gives it: the value, `{"env": "NAME"}` or `{"file": "path"}`.
/// Read as it stands; [`SecretRef::resolve`] reads the environment or the file once the
/// section is read, noting where the secret came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef(pub Value);

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::section::raw(d).map(SecretRef)
    }
}

impl JsonSchema for SecretRef {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        secret_schema(generator)
    }
}

impl SecretRef {
    /// The secret, read from where the file says; problems noted at `path`.
    pub fn resolve(&self, c: &mut Checker, path: &str, base: &Path) -> Option<Secret> {
        super::values::secret_value(c, &self.0, path, base)
    }
}

impl Serialize for Secret {
    /// A secret is shown as its mask, wherever a section is shown.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Secret::MASK)
    }
}

/// A duration as the file writes it (`"10m"`).
pub fn shown_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::duration_text(*d))
}

/// Whole seconds (`timeout_s`).
pub fn shown_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// URLs with all past the host masked ([`super::mask_url`]).
pub fn shown_urls<S: Serializer>(urls: &[url::Url], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| super::mask_url(u.as_str())))
}

/// A URL with all past the host masked.
pub fn shown_url<S: Serializer>(url: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::mask_url(url.as_str()))
}

/// A secret URL with all past the host masked.
pub fn shown_secret_url<S: Serializer>(url: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::mask_url(url.expose()))
}

/// Pairs (a webhook's headers) as an object, in their order.
pub fn shown_pairs<S: Serializer, V: Serialize>(
    pairs: &[(String, V)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// A section as `check-config` shows it: its `Serialize`, which masks every secret.
pub fn shown<T: Serialize>(section: &T) -> Value {
    serde_json::to_value(section).unwrap_or(Value::Null)
}
