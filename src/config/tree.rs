//! The YAML document as a tree of located nodes, and the one place that configures serde-saphyr.
//!
//! The configuration is parsed in two steps: serde-saphyr turns the text into this tree (every
//! node carries its line and column), then `build` turns the tree into typed settings. Doing the
//! typing ourselves, rather than deriving `Deserialize` on the settings, is what lets every
//! refusal (unknown key, duplicate key, wrong type, bad regex, semantic check) name the file,
//! the line, the column *and* the key path (`apps[0].roles[1].min`) in one consistent format.
//! serde-saphyr's own errors only know the position, not the key.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy, Spanned};
use std::fmt;

/// A YAML node with the place it was written (`referenced`) and, for aliases, defined.
pub(super) type Node = Spanned<Value>;

/// What a node holds. Scalars keep the type serde-saphyr inferred for plain scalars; the
/// builder decides what each key accepts.
#[derive(Debug)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order, duplicates included (they are refused by the builder, which
    /// can then say where the first occurrence was).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// A short description for "expected X, found Y" messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        // Too big for any setting; keep it as a number the builder will refuse.
        Ok(Value::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

/// Parser options: one document, bounded work, no surprises from YAML 1.1.
///
/// - Duplicate keys are passed through so the builder can refuse them with the key path and
///   the line of the first occurrence (serde-saphyr would refuse them too, by default, but only
///   with the position).
/// - Only `true`/`false` are booleans (`singleton: yes` is refused instead of guessed, and keys
///   `y`/`n` stay strings).
/// - `0755` and `1_000` stay strings, so they are refused as numbers instead of being read
///   as something else.
/// - Unknown tags (`!foo`) are refused; YAML merge keys (`<<: *base`) stay allowed.
/// - The input size is checked by the caller before parsing (string input is not covered by
///   serde-saphyr's `max_reader_input_bytes`); the budget below bounds the parse itself.
pub(super) fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(super::MAX_SIZE as usize),
            max_depth: 32,
            max_nodes: 100_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
        },
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        merge_keys: MergeKeyPolicy::Merge,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        reject_unsupported_tags: true,
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        with_snippet: false,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
    }
}

/// Parses `text` into a tree. Any error is a YAML-level problem (syntax, several documents,
/// a budget breach), never a schema problem: the tree accepts every well-formed document.
pub(super) fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options::<Node>(text, options())
}

/// The exact source text of a scalar node, when serde-saphyr knows its byte span (it does for
/// string input). Used to keep `name: 0755` as "0755" rather than a reformatted number.
pub(super) fn source_text<'t>(node: &Node, text: &'t str) -> Option<&'t str> {
    let span = node.defined.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    text.get(start..start.checked_add(len)?)
}
