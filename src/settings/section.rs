//! A config section read with serde from one typed struct, and still every problem at
//! once, each at its JSON path.
//!
//! A section's keys are described once, by a `#[derive(Deserialize, JsonSchema)]` struct:
//! its field names are the keys the loader knows ([`keys`]) and the schema's properties,
//! its field types say each value's form. Reading goes through [`load`], whose
//! deserializer walks the parsed JSON and knows where it is, so:
//!
//! - every problem is noted with its path as it is met (`webhook.scopes.ops.method`), and
//!   reading goes on: a field typed [`Field`] takes a wrong value as `Field::Wrong`
//!   instead of failing the struct — serde's derive alone would stop at the first
//!   error, and operators who edit the file by hand deserve the whole list;
//! - a key the struct does not have is noted with the keys it does have, and skipped;
//! - `null` is a value like any other (`expected a string, found null`), never taken for
//!   an absent key, as the file's format has always had it;
//! - a type's complaint reads as the config's own words do: `expected <what the type
//!   expects>, found a number`.
//!
//! Checks across keys (`set either preset or body`) and those that need the file system
//! or the environment (secrets) come after, in each section's `validate`, on the struct
//! that was read.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::Value;

use super::check::{Checker, Problem, index, join};

/// Reads `v`, the section at `path` in the file, as `T`, then `validate`s what was read;
/// every problem of both is noted in `c`, in the order of the keys they are at (the
/// struct's order, a map's entries in the file's), so that a key's problems from its form
/// and from checks across keys stand together. `None` when `T` as a whole could not be
/// read (the problems say why); a struct whose fields are [`Field`]s is read whatever its
/// values are, so long as it is an object.
pub fn load<'v, T: Deserialize<'v>, R>(
    c: &mut Checker,
    v: &'v Value,
    path: &str,
    validate: impl FnOnce(&mut Checker, T) -> R,
) -> Option<R> {
    let notes = RefCell::new(Notes::default());
    notes.borrow_mut().visited.push(path.to_string());
    let got = T::deserialize(At {
        v,
        path: path.to_string(),
        notes: &notes,
    });
    let Notes { problems, visited } = notes.into_inner();
    let before = c.problems.len();
    c.problems.extend(problems);
    let made = got.ok().map(|t| validate(c, t));
    let mut order = std::collections::HashMap::new();
    for (i, p) in visited.iter().enumerate() {
        order.entry(p.as_str()).or_insert(i);
    }
    c.problems[before..].sort_by_key(|p| place(&order, &p.json_path));
    made
}

/// Where a problem's path stands among the paths read: its own (a struct's absent field
/// has its place too), or, for a key that was not read (unknown, an absent map entry),
/// its nearest parent's.
fn place(order: &std::collections::HashMap<&str, usize>, path: &str) -> usize {
    let mut at = path;
    loop {
        if let Some(i) = order.get(at) {
            return *i;
        }
        match at.rfind(['.', '[']) {
            Some(cut) => at = &at[..cut],
            None => return 0,
        }
    }
}

/// What reading met: the problems, and every path read, in order.
#[derive(Default)]
struct Notes {
    problems: Vec<Problem>,
    visited: Vec<String>,
}

/// The keys of the struct `T`, as the file spells them, in their order: the list an
/// unknown key's problem shows, `KNOWN_KEYS` and the schema's tests.
pub fn keys<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let fields = Cell::new(&[][..]);
    let _ = T::deserialize(KeysOf(&fields));
    fields.get()
}

/// The name under which [`raw`] asks for a value.
const RAW: &str = "protowatch::settings::section::raw";

/// A value taken as it stands, for a section's `validate` to look into (a secret given
/// as `{"file": …}`): the problems found inside it then stand at their owner's key.
pub fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a value")
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            Value::deserialize(d)
        }
    }
    d.deserialize_newtype_struct(RAW, V)
}

/// A key's value as it was read: absent, wrong (its problem is noted), or read.
///
/// Its schema is `T`'s. A field of this type is required in the schema unless it has
/// `#[serde(default)]`; either way an absent key reads as `Absent`, so that `validate`
/// says what is missing in the section's own words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field<T> {
    #[default]
    Absent,
    Wrong,
    Given(T),
}

impl<T> Field<T> {
    pub fn given(self) -> Option<T> {
        match self {
            Field::Given(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_ref(&self) -> Field<&T> {
        match self {
            Field::Absent => Field::Absent,
            Field::Wrong => Field::Wrong,
            Field::Given(t) => Field::Given(t),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Wrong => Field::Wrong,
            Field::Given(t) => Field::Given(f(t)),
        }
    }

    pub fn is_given(&self) -> bool {
        matches!(self, Field::Given(_))
    }

    /// The value, or `None` with `missing (required)` noted at `path` when the key is
    /// absent (a wrong value's problem is noted already).
    pub fn required(self, c: &mut Checker, path: &str) -> Option<T> {
        self.required_or(c, path, "missing (required)")
    }

    /// As [`Field::required`], with the section's own words for an absent key.
    pub fn required_or(self, c: &mut Checker, path: &str, missing: &str) -> Option<T> {
        match self {
            Field::Given(t) => Some(t),
            Field::Absent => {
                c.problem(path, missing);
                None
            }
            Field::Wrong => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Field<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            // serde's stand-in for an absent key asks for an option and answers `none`;
            // the reader's deserializer always answers `some`.
            fn visit_none<E: de::Error>(self) -> Result<Field<T>, E> {
                Ok(Field::Absent)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Field<T>, D::Error> {
                // The reader noted the problem where it was met, with its path.
                Ok(T::deserialize(d).map_or(Field::Wrong, Field::Given))
            }
        }
        d.deserialize_option(V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Field<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// How a list or a map of a section is named in its problems; a marker type per field.
pub trait Wording {
    /// `a list of Alertmanager URLs`: what a value of the wrong type was expected to be.
    const EXPECTED: &'static str;
    /// The problem of an empty one, when it must not be empty.
    const EMPTY: Option<&'static str> = None;

    /// A map's entry name (a label's, a header's): `Err` is its problem, noted at the
    /// entry, whose value is then not read.
    fn key(_name: &str) -> Result<(), String> {
        Ok(())
    }
}

/// A list whose entries are read one by one: a wrong entry is noted and left out, the
/// others are read; `whole` says whether none was left out. Its schema is `Vec<T>`'s.
pub struct List<T, W> {
    pub items: Vec<T>,
    pub whole: bool,
    wording: PhantomData<W>,
}

impl<T: fmt::Debug, W> fmt::Debug for List<T, W> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.items.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>, W: Wording> Deserialize<'de> for List<T, W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, W>(PhantomData<(T, W)>);
        impl<'de, T: Deserialize<'de>, W: Wording> Visitor<'de> for V<T, W> {
            type Value = List<T, W>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(W::EXPECTED)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Emptiness is the file's, not what is left once wrong entries are out.
                if let (Some(empty), Some(0)) = (W::EMPTY, seq.size_hint()) {
                    return Err(de::Error::custom(empty));
                }
                let (mut items, mut whole) = (Vec::new(), true);
                while let Some(item) = seq.next_element::<Field<T>>()? {
                    match item {
                        Field::Given(t) => items.push(t),
                        _ => whole = false,
                    }
                }
                Ok(List {
                    items,
                    whole,
                    wording: PhantomData,
                })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

impl<T: JsonSchema, W> JsonSchema for List<T, W> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        <Vec<T>>::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Vec<T>>::json_schema(generator)
    }
}

/// An object of names the operator chooses (scopes, labels, headers), read entry by
/// entry: a wrong entry is noted and left out; the others in the file's order. Its
/// schema is `BTreeMap<String, T>`'s.
pub struct Named<T, W>(pub Vec<(String, T)>, PhantomData<W>);

impl<T: fmt::Debug, W> fmt::Debug for Named<T, W> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>, W: Wording> Deserialize<'de> for Named<T, W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, W>(PhantomData<(T, W)>);
        impl<'de, T: Deserialize<'de>, W: Wording> Visitor<'de> for V<T, W> {
            type Value = Named<T, W>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(W::EXPECTED)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                if let (Some(empty), Some(0)) = (W::EMPTY, map.size_hint()) {
                    return Err(de::Error::custom(empty));
                }
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if let Err(problem) = W::key(&name) {
                        // Noted at the entry's path by the reader; the map reads on.
                        let _refused: Result<(), _> = map.next_value_seed(Refuse(problem));
                        continue;
                    }
                    if let Field::Given(t) = map.next_value::<Field<T>>()? {
                        out.push((name, t));
                    }
                }
                Ok(Named(out, PhantomData))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<T: JsonSchema, W> JsonSchema for Named<T, W> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<String, T>>::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <BTreeMap<String, T>>::json_schema(generator)
    }
}

/// Refuses the value it is given with a problem of its own, so that the reader notes
/// the problem at that value's path.
struct Refuse(String);

impl<'de> DeserializeSeed<'de> for Refuse {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        struct V(String);
        impl<'de> Visitor<'de> for V {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
                Err(E::custom(self.0))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
                Err(E::custom(self.0))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
                Err(E::custom(self.0))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
                Err(E::custom(self.0))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
                Err(E::custom(self.0))
            }
            fn visit_unit<E: de::Error>(self) -> Result<(), E> {
                Err(E::custom(self.0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
                Err(de::Error::custom(self.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
                Err(de::Error::custom(self.0))
            }
        }
        d.deserialize_any(V(self.0))
    }
}

/// A problem met while reading; noted with its path by the deserializer that met it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    message: String,
    /// A struct's absent field: noted at the field's path, not the struct's.
    missing: Option<&'static str>,
    noted: bool,
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            message: msg.to_string(),
            missing: None,
            noted: false,
        }
    }

    fn invalid_type(unexp: Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("expected {exp}, found {}", found(&unexp)))
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            message: "missing (required)".to_string(),
            missing: Some(field),
            noted: false,
        }
    }
}

/// A value's type as [`super::check::kind`] names it.
fn found(u: &Unexpected) -> &'static str {
    match u {
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) | Unexpected::Bytes(_) => "a string",
        Unexpected::Seq => "a list",
        Unexpected::Map => "an object",
        _ => "something else",
    }
}

/// The deserializer: a value and where it is in the file.
struct At<'a, 'v> {
    v: &'v Value,
    path: String,
    notes: &'a RefCell<Notes>,
}

impl<'a, 'v> At<'a, 'v> {
    fn note(&self, mut e: Error) -> Error {
        if !e.noted {
            let json_path = match e.missing {
                Some(field) => join(&self.path, field),
                None => self.path.clone(),
            };
            self.notes.borrow_mut().problems.push(Problem {
                json_path,
                message: e.message.clone(),
            });
            e.noted = true;
        }
        e
    }

    fn child(&self, v: &'v Value, path: String) -> At<'a, 'v> {
        self.notes.borrow_mut().visited.push(path.clone());
        At {
            v,
            path,
            notes: self.notes,
        }
    }
}

impl<'de> Deserializer<'de> for At<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let got = match self.v {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                (None, None) => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Items {
                at: &self,
                items: items.iter().enumerate(),
                left: items.len(),
            }),
            Value::Object(map) => visitor.visit_map(Entries {
                at: &self,
                entries: map
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v)))
                    .collect::<Vec<_>>()
                    .into_iter(),
                value: None,
            }),
        };
        got.map_err(|e| self.note(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // `null` is a value: an absent key is the only `none`.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == RAW {
            // Taken whole, its inside not read as keys: its problems are its owner's.
            let got = visitor
                .visit_newtype_struct(self.v)
                .map_err(de::Error::custom);
            return got.map_err(|e| self.note(e));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(map) = self.v else {
            let e = de::Error::invalid_type(unexpected(self.v), &"an object");
            return Err(self.note(e));
        };
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                self.notes.borrow_mut().problems.push(Problem {
                    json_path: join(&self.path, key),
                    message: super::hint::unknown_key(key, fields),
                });
            }
        }
        // The struct's own order, as the checks were always written; an absent field
        // keeps its place, for the problem that it is missing.
        let entries: Vec<_> = fields.iter().map(|f| (*f, map.get(*f))).collect();
        let got = visitor.visit_map(Entries {
            at: &self,
            entries: entries.into_iter(),
            value: None,
        });
        got.map_err(|e| self.note(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map enum identifier
    }
}

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Float(0.0),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

struct Items<'b, 'a, 'v, I> {
    at: &'b At<'a, 'v>,
    items: I,
    left: usize,
}

impl<'de, I: Iterator<Item = (usize, &'de Value)>> SeqAccess<'de> for Items<'_, '_, 'de, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((i, v)) = self.items.next() else {
            return Ok(None);
        };
        self.left -= 1;
        let child = self.at.child(v, index(&self.at.path, i));
        seed.deserialize(child).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An object's entries; a struct's absent fields come as `None`, to be passed over with
/// their place noted.
struct Entries<'b, 'a, 'v, I> {
    at: &'b At<'a, 'v>,
    entries: I,
    value: Option<(&'v str, &'v Value)>,
}

impl<'de, I: ExactSizeIterator<Item = (&'de str, Option<&'de Value>)>> MapAccess<'de>
    for Entries<'_, '_, 'de, I>
{
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let (key, v) = loop {
            match self.entries.next() {
                None => return Ok(None),
                Some((key, Some(v))) => break (key, v),
                Some((key, None)) => {
                    let path = join(&self.at.path, key);
                    self.at.notes.borrow_mut().visited.push(path);
                }
            }
        };
        self.value = Some((key, v));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some((key, v)) => seed.deserialize(self.at.child(v, join(&self.at.path, key))),
            None => Err(de::Error::custom("a value asked for before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() + usize::from(self.value.is_some()))
    }
}

/// A deserializer that only notes the fields a struct asks for.
struct KeysOf<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for KeysOf<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.set(fields);
        Err(de::Error::custom("only its keys were asked for"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct
        map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Names;
    impl Wording for Names {
        const EXPECTED: &'static str = "a list of names";
        const EMPTY: Option<&'static str> = Some("no names");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: Field<String>,
        #[serde(default)]
        #[allow(dead_code)]
        also: Field<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[serde(rename = "bot-id")]
        bot: Field<String>,
        #[serde(default)]
        names: Field<List<String, Names>>,
        #[serde(default)]
        inner: Field<Inner>,
        strict: String,
    }

    fn problems(c: &Checker) -> Vec<String> {
        c.problems
            .iter()
            .map(|p| format!("{}: {}", p.json_path, p.message))
            .collect()
    }

    #[test]
    fn every_problem_with_its_path_and_reading_goes_on() {
        let mut c = Checker::default();
        let v = json!({"extra": 1, "bot-id": 5, "names": ["a", null, "b"],
                       "inner": {"name": "x", "also": []}, "strict": "s"});
        let s: Section = load(&mut c, &v, "sec", |_, s| s).unwrap();
        assert_eq!(
            problems(&c),
            [
                "sec.extra: unknown key \"extra\"; known keys here: bot-id, names, inner, strict",
                "sec.bot-id: expected a string, found a number",
                "sec.names[1]: expected a string, found null",
                "sec.inner.also: expected a string, found a list",
            ]
        );
        assert_eq!(s.bot, Field::Wrong);
        let names = s.names.given().unwrap();
        assert_eq!(
            (names.items, names.whole),
            (vec!["a".to_string(), "b".into()], false)
        );
        assert_eq!(s.inner.given().unwrap().name, Field::Given("x".into()));
        assert_eq!(s.strict, "s");
    }

    #[test]
    fn absent_keys_empty_lists_and_a_required_plain_field() {
        let mut c = Checker::default();
        let v = json!({"names": [], "inner": {}});
        let s: Option<Section> = load(&mut c, &v, "sec", |_, s| s);
        assert!(s.is_none());
        assert_eq!(
            problems(&c),
            ["sec.names: no names", "sec.strict: missing (required)"]
        );
        let mut c = Checker::default();
        let s: Section = load(&mut c, &json!({"names": 5, "strict": ""}), "sec", |_, s| s).unwrap();
        assert_eq!(
            problems(&c),
            ["sec.names: expected a list of names, found a number"]
        );
        assert_eq!((s.bot, s.inner.is_given()), (Field::Absent, false));
        let mut c = Checker::default();
        assert!(load(&mut c, &json!([]), "sec", |_, s: Section| s).is_none());
        assert_eq!(problems(&c), ["sec: expected an object, found a list"]);
    }

    #[test]
    fn problems_of_the_checks_stand_with_their_keys() {
        let mut c = Checker::default();
        let v = json!({"bot-id": 1, "names": [2], "inner": {"name": "x"}, "strict": "s", "x": 0});
        load(&mut c, &v, "sec", |c, s: Section| {
            c.problem("sec.inner.name", "checked after");
            c.problem("sec.bot-id", "checked after");
            c.problem("sec.inner.also", "absent, in its place");
            s
        });
        assert_eq!(
            problems(&c),
            [
                "sec.x: unknown key \"x\"; known keys here: bot-id, names, inner, strict",
                "sec.bot-id: expected a string, found a number",
                "sec.bot-id: checked after",
                "sec.names[0]: expected a string, found a number",
                "sec.inner.name: checked after",
                "sec.inner.also: absent, in its place",
            ]
        );
    }

    #[test]
    fn keys_are_the_structs() {
        assert_eq!(keys::<Section>(), ["bot-id", "names", "inner", "strict"]);
        assert_eq!(keys::<Inner>(), ["name", "also"]);
    }
}
