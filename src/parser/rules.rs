//! User `rules`: regexes with named captures that turn a line into an event, tried
//! before the built-in mapping.
//!
//! All patterns are compiled into one `RegexSet` so a line costs one pass however many
//! rules there are; captures are taken only for the first rule that matched. The
//! captures `message` and `source` name the event's text and source; `key` is a template
//! over the captures (`$name`, `${name}`).

use regex::RegexSet;

use crate::config::RuleConfig;

pub struct Rules {
    set: RegexSet,
    rules: Vec<RuleConfig>,
}

/// What the first matching rule made of a line.
pub struct RuleMatch<'r> {
    /// The rule's place in the config's `rules`, which counts of matches are kept by.
    pub index: usize,
    pub rule: &'r RuleConfig,
    pub message: Option<String>,
    pub source: Option<String>,
    pub key: Option<String>,
}

impl Rules {
    pub fn new(rules: &[RuleConfig]) -> Result<Rules, regex::Error> {
        let set = RegexSet::new(rules.iter().map(|r| r.pattern.as_str()))?;
        Ok(Rules {
            set,
            rules: rules.to_vec(),
        })
    }

    pub fn empty() -> Rules {
        Rules {
            set: RegexSet::empty(),
            rules: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rules in the config's order.
    pub fn configs(&self) -> &[RuleConfig] {
        &self.rules
    }

    pub fn apply(&self, line: &str) -> Option<RuleMatch<'_>> {
        if self.rules.is_empty() {
            return None;
        }
        // Most lines match no rule: a yes/no stops at the first sign of a match or the
        // end of the line, where asking which rules matched runs every pattern to the end.
        if !self.set.is_match(line) {
            return None;
        }
        let first = self.set.matches(line).into_iter().next()?;
        let rule = &self.rules[first];
        let caps = rule.pattern.captures(line)?;
        let named = |n: &str| caps.name(n).map(|m| m.as_str().trim().to_string());
        // A template can expand to nothing (`$x` naming a capture that did not take part
        // in the match, or none at all); an empty key would make every such line one
        // alert of no name, so the line keeps its default key instead.
        let key = rule
            .key
            .as_ref()
            .map(|template| {
                let mut out = String::new();
                caps.expand(template, &mut out);
                out
            })
            .filter(|k| !k.trim().is_empty());
        Some(RuleMatch {
            index: first,
            rule,
            message: named("message"),
            source: named("source").filter(|s| !s.is_empty()),
            key,
        })
    }
}
