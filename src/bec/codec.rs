//! BEC's messages on Redis, read and written without Python.
//!
//! bec_lib packs every message with msgpack, and every object that is not a plain value
//! as `{"__bec_codec__": {"encoder_name", "type_name", "data"}}`: the message itself
//! (`encoder_name: "BECMessage"`, `type_name: "NotificationMessage"`) and, inside it, each
//! pydantic model (`"BaseModel"`). Wrappers can sit at any depth, so decoding first
//! strips them all (keeping the outermost type name to check what arrived), then reads
//! the plain structure. Encoding writes the same wrappers, so bec_lib's own decoder
//! rebuilds its classes from what we write.
//!
//! What comes from Redis is outside input: sizes are bounded, nothing here panics on
//! it, and every refusal says what was wrong.

use std::collections::BTreeMap;

use rmpv::Value;

/// The largest message read: BEC's attachments are at most 5 MB each; a message several
/// times that is no notification.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

const CODEC_KEY: &str = "__bec_codec__";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("{0} bytes, more than the {MAX_MESSAGE_BYTES} a message may have")]
    TooLarge(usize),
    #[error("not msgpack: {0}")]
    Msgpack(String),
    #[error("trailing bytes after the message")]
    Trailing,
    #[error("a {found}, not a {expected}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("{0}")]
    Shape(String),
}

/// One item of a notification's `message` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `MessagingServiceTextContent`: HTML as BEC's `add_text` writes it, or plain text.
    Text(String),
    /// `MessagingServiceTagsContent`.
    Tags(Vec<String>),
    /// `MessagingServiceFileContent`; `width` and `height` as given (a number of
    /// pixels or a CSS length), for a service that sizes what it shows.
    File {
        filename: String,
        mime_type: String,
        data: Vec<u8>,
        width: Option<String>,
        height: Option<String>,
    },
    /// `MessagingServiceStickerContent`: a Signal sticker id.
    Sticker(String),
    /// `MessagingServiceGiphyContent`.
    Giphy(String),
    /// An item of a kind this build does not know (a newer BEC): its field names.
    Unknown(String),
}

/// BEC's `NotificationMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub event: String,
    pub items: Vec<Item>,
}

/// A scope of a `NotificationServiceTarget`: `None` (null, the service's default), one
/// name, or several.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub service_name: String,
    /// Empty: the service's default scope.
    pub scopes: Vec<String>,
}

/// BEC's `NotificationConfigMessage.routes`: event → targets.
pub type BecRoutes = BTreeMap<String, Vec<Target>>;

/// Reads one msgpack value, all of `bytes`.
fn read(bytes: &[u8]) -> Result<(Option<String>, Value), CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    let mut rd = bytes;
    let v = rmpv::decode::read_value(&mut rd).map_err(|e| CodecError::Msgpack(e.to_string()))?;
    if !rd.is_empty() {
        return Err(CodecError::Trailing);
    }
    let type_name = wrapper(&v).and_then(|(_, t, _)| t.map(str::to_string));
    Ok((type_name, strip(v)))
}

/// `(encoder_name, type_name, data)` of a `__bec_codec__` wrapper.
fn wrapper(v: &Value) -> Option<(Option<&str>, Option<&str>, &Value)> {
    let Value::Map(entries) = v else { return None };
    let [(k, inner)] = entries.as_slice() else {
        return None;
    };
    if k.as_str() != Some(CODEC_KEY) {
        return None;
    }
    let encoder = field(inner, "encoder_name").and_then(Value::as_str);
    let type_name = field(inner, "type_name").and_then(Value::as_str);
    Some((encoder, type_name, field(inner, "data")?))
}

/// `v` with every wrapper replaced by its data, at any depth.
fn strip(v: Value) -> Value {
    if wrapper(&v).is_some() {
        let Value::Map(mut entries) = v else {
            return Value::Nil;
        };
        let inner = entries.pop().map(|(_, i)| i).unwrap_or(Value::Nil);
        let data = match inner {
            Value::Map(fields) => fields
                .into_iter()
                .find(|(k, _)| k.as_str() == Some("data"))
                .map(|(_, d)| d)
                .unwrap_or(Value::Nil),
            _ => Value::Nil,
        };
        return strip(data);
    }
    match v {
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (strip(k), strip(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
        other => other,
    }
}

fn field<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Nil => "null",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::F32(_) | Value::F64(_) => "number",
        Value::String(_) => "string",
        Value::Binary(_) => "binary",
        Value::Array(_) => "list",
        Value::Map(_) => "map",
        Value::Ext(..) => "extension",
    }
    .to_string()
}

fn string(v: &Value, what: &str) -> Result<String, CodecError> {
    match v {
        Value::String(s) => s
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CodecError::Shape(format!("{what} is not valid UTF-8"))),
        other => Err(CodecError::Shape(format!(
            "{what} is a {}, not a string",
            kind(other)
        ))),
    }
}

fn required<'v>(v: &'v Value, name: &str, of: &str) -> Result<&'v Value, CodecError> {
    field(v, name).ok_or_else(|| CodecError::Shape(format!("{of} has no {name:?}")))
}

fn expect_type(found: Option<String>, expected: &'static str) -> Result<(), CodecError> {
    match found {
        Some(t) if t != expected => Err(CodecError::WrongType { expected, found: t }),
        _ => Ok(()),
    }
}

/// A message of type `expected` read whole: its fields, and the items of its `message`
/// list (at most [`MAX_ITEMS`]).
fn message_items(bytes: &[u8], expected: &'static str) -> Result<(Value, Vec<Item>), CodecError> {
    let (type_name, v) = read(bytes)?;
    expect_type(type_name, expected)?;
    if !matches!(v, Value::Map(_)) {
        return Err(CodecError::Shape(format!(
            "the message is a {}, not a map",
            kind(&v)
        )));
    }
    let Value::Array(list) = required(&v, "message", "the message")? else {
        return Err(CodecError::Shape("\"message\" is not a list".into()));
    };
    if list.len() > MAX_ITEMS {
        return Err(CodecError::Shape(format!(
            "{} items, more than the {MAX_ITEMS} a message may have",
            list.len()
        )));
    }
    let items = list.iter().map(item).collect::<Result<Vec<_>, _>>()?;
    Ok((v, items))
}

/// A `NotificationMessage` as `connector.notify` publishes it.
pub fn decode_notification(bytes: &[u8]) -> Result<Notification, CodecError> {
    let (v, items) = message_items(bytes, "NotificationMessage")?;
    let event = string(required(&v, "event", "the message")?, "event")?;
    Ok(Notification { event, items })
}

fn item(v: &Value) -> Result<Item, CodecError> {
    if let Some(c) = field(v, "content") {
        return Ok(Item::Text(string(c, "content")?));
    }
    if let Some(t) = field(v, "tags") {
        let Value::Array(tags) = t else {
            return Err(CodecError::Shape("\"tags\" is not a list".into()));
        };
        return Ok(Item::Tags(
            tags.iter()
                .map(|t| string(t, "a tag"))
                .collect::<Result<_, _>>()?,
        ));
    }
    if let Some(d) = field(v, "data") {
        let filename = string(required(v, "filename", "a file")?, "filename")?;
        let mime_type = match field(v, "mime_type") {
            Some(m) => string(m, "mime_type")?,
            None => "application/octet-stream".into(),
        };
        let data = match d {
            Value::Binary(b) => b.clone(),
            other => {
                return Err(CodecError::Shape(format!(
                    "the data of {filename:?} is a {}, not bytes",
                    kind(other)
                )));
            }
        };
        return Ok(Item::File {
            filename,
            mime_type,
            data,
            width: size(v, "width")?,
            height: size(v, "height")?,
        });
    }
    if let Some(s) = field(v, "sticker_id") {
        return Ok(Item::Sticker(string(s, "sticker_id")?));
    }
    if let Some(g) = field(v, "giphy_url") {
        return Ok(Item::Giphy(string(g, "giphy_url")?));
    }
    match v {
        Value::Map(entries) => Ok(Item::Unknown(
            entries
                .iter()
                .filter_map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
        other => Err(CodecError::Shape(format!(
            "an item of the message is a {}, not a map",
            kind(other)
        ))),
    }
}

/// A file's `width` or `height`: pixels as SciLog's SDK writes them (`400` →
/// `400px`), a CSS length as it is; absent or null: none.
fn size(v: &Value, name: &str) -> Result<Option<String>, CodecError> {
    match field(v, name) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Integer(n)) => match n.as_u64() {
            Some(px) if px > 0 && px <= 100_000 => Ok(Some(format!("{px}px"))),
            _ => Err(CodecError::Shape(format!("{name} {n} is not a size"))),
        },
        Some(s @ Value::String(_)) => {
            let text = string(s, name)?;
            let ok = text.len() <= 20
                && !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '%');
            if ok {
                Ok(Some(text))
            } else {
                Err(CodecError::Shape(format!("{name} {text:?} is not a size")))
            }
        }
        Some(other) => Err(CodecError::Shape(format!(
            "{name} is a {}, not a size",
            kind(other)
        ))),
    }
}

/// BEC's `MessagingServiceMessage`: what a session's `bec.messaging.<service>…send()`
/// writes to the message queue stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMessage {
    /// `scilog`, `signal`, `teams` (or whatever the writer put there).
    pub service_name: String,
    pub items: Vec<Item>,
    /// The scopes named; empty: none (the service's default).
    pub scopes: Vec<String>,
}

/// The most scopes one message may name: a BEC user names one or a few.
pub const MAX_SCOPES: usize = 50;
/// The most items one message may have.
pub const MAX_ITEMS: usize = 1000;

/// A `MessagingServiceMessage` as `MessagingService.send` XADDs it (field `data`).
pub fn decode_service_message(bytes: &[u8]) -> Result<ServiceMessage, CodecError> {
    let (v, items) = message_items(bytes, "MessagingServiceMessage")?;
    let service_name = string(required(&v, "service_name", "the message")?, "service_name")?;
    let scopes = match field(&v, "scope") {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(s)) if s.len() > MAX_SCOPES => {
            return Err(CodecError::Shape(format!(
                "{} scopes, more than the {MAX_SCOPES} a message may name",
                s.len()
            )));
        }
        Some(Value::Array(s)) => s
            .iter()
            .map(|s| string(s, "a scope"))
            .collect::<Result<_, _>>()?,
        Some(s) => vec![string(s, "scope")?],
    };
    Ok(ServiceMessage {
        service_name,
        items,
        scopes,
    })
}

/// A `NotificationConfigMessage`'s routes, as `set_auto_notifications` writes them.
pub fn decode_routes(bytes: &[u8]) -> Result<BecRoutes, CodecError> {
    let (type_name, v) = read(bytes)?;
    expect_type(type_name, "NotificationConfigMessage")?;
    if !matches!(v, Value::Map(_)) {
        return Err(CodecError::Shape(format!(
            "the routing config is a {}, not a map",
            kind(&v)
        )));
    }
    let routes = match field(&v, "routes") {
        None | Some(Value::Nil) => return Ok(BecRoutes::new()),
        Some(Value::Map(r)) => r,
        Some(other) => {
            return Err(CodecError::Shape(format!(
                "\"routes\" is a {}, not a map",
                kind(other)
            )));
        }
    };
    let mut out = BecRoutes::new();
    for (event, targets) in routes {
        let event = string(event, "an event name")?;
        let Value::Array(targets) = targets else {
            return Err(CodecError::Shape(format!(
                "the routes of {event:?} are not a list"
            )));
        };
        let mut list = Vec::new();
        for t in targets {
            let service_name = string(required(t, "service_name", "a target")?, "service_name")?;
            let scopes = match field(t, "scope") {
                None | Some(Value::Nil) => Vec::new(),
                Some(Value::Array(s)) => s
                    .iter()
                    .map(|s| string(s, "a scope"))
                    .collect::<Result<_, _>>()?,
                Some(s) => vec![string(s, "scope")?],
            };
            list.push(Target {
                service_name,
                scopes,
            });
        }
        out.insert(event, list);
    }
    Ok(out)
}

/// A pydantic model as bec_lib wraps it.
fn model(type_name: &str, fields: Vec<(&str, Value)>) -> Value {
    wrap("BaseModel", type_name, map(fields))
}

fn wrap(encoder: &str, type_name: &str, data: Value) -> Value {
    map(vec![(
        CODEC_KEY,
        map(vec![
            ("encoder_name", Value::from(encoder)),
            ("type_name", Value::from(type_name)),
            ("data", data),
        ]),
    )])
}

fn map(fields: Vec<(&str, Value)>) -> Value {
    Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// One scope of one service in an `AvailableMessagingServicesMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// `scilog`, `signal` or `teams`.
    pub service_type: &'static str,
    pub scope: String,
    /// What the model needs besides: SciLog's `logbook_id`, Signal's `group_id`.
    pub extra: Vec<(&'static str, Option<String>)>,
}

/// `config.<service>` of the message: enabled, and the default scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSwitch {
    pub service_type: &'static str,
    pub enabled: bool,
    pub default: Option<String>,
}

/// An `AvailableMessagingServicesMessage` as bec_lib writes it (XADD field `data`).
pub fn encode_available(switches: &[ServiceSwitch], offered: &[Offered]) -> Vec<u8> {
    let config: Vec<(&str, Value)> = switches
        .iter()
        .map(|s| {
            (
                s.service_type,
                map(vec![
                    ("enabled", Value::from(s.enabled)),
                    (
                        "default",
                        s.default.as_deref().map_or(Value::Nil, Value::from),
                    ),
                ]),
            )
        })
        .collect();
    let services: Vec<Value> = offered
        .iter()
        .map(|o| {
            let type_name = match o.service_type {
                "scilog" => "SciLogServiceInfo",
                "signal" => "SignalServiceInfo",
                _ => "TeamsServiceInfo",
            };
            let mut fields = vec![
                (
                    "id",
                    Value::from(format!("protowatch:{}:{}", o.service_type, o.scope)),
                ),
                ("scope", Value::from(o.scope.as_str())),
                ("enabled", Value::from(true)),
                ("name", Value::from(format!("protowatch {}", o.scope))),
                ("service_type", Value::from(o.service_type)),
            ];
            for (k, v) in &o.extra {
                fields.push((k, v.as_deref().map_or(Value::Nil, Value::from)));
            }
            model(type_name, fields)
        })
        .collect();
    let msg = wrap(
        "BECMessage",
        "AvailableMessagingServicesMessage",
        map(vec![
            ("metadata", Value::Map(Vec::new())),
            ("config", model("MessagingConfig", config)),
            ("deployment_services", Value::Array(services)),
            ("session_services", Value::Array(Vec::new())),
        ]),
    );
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &msg);
    out
}

/// Reads back what [`encode_available`] wrote (and what Atlas writes): each service's
/// switch and scopes. For tests and the log.
pub fn decode_available(bytes: &[u8]) -> Result<BTreeMap<String, (bool, Vec<String>)>, CodecError> {
    let (type_name, v) = read(bytes)?;
    expect_type(type_name, "AvailableMessagingServicesMessage")?;
    let mut out = BTreeMap::new();
    if let Some(Value::Map(config)) = field(&v, "config") {
        for (k, s) in config {
            let name = string(k, "a service")?;
            let enabled = field(s, "enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            out.insert(name, (enabled, Vec::new()));
        }
    }
    if let Some(Value::Array(list)) = field(&v, "deployment_services") {
        for s in list {
            let service = string(required(s, "service_type", "a service")?, "service_type")?;
            let scope = string(required(s, "scope", "a service")?, "scope")?;
            out.entry(service)
                .or_insert((false, Vec::new()))
                .1
                .push(scope);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Bytes captured from bec_lib itself (`fixtures/bec/capture.py`), not hand-made.
    use super::*;

    const PLAIN: &[u8] = include_bytes!("../../fixtures/bec/notify_plain.msgpack");
    const RICH: &[u8] = include_bytes!("../../fixtures/bec/notify_rich.msgpack");
    const STYLES: &[u8] = include_bytes!("../../fixtures/bec/notify_styles_png.msgpack");
    const STICKER: &[u8] = include_bytes!("../../fixtures/bec/notify_sticker_giphy.msgpack");
    const ROUTES: &[u8] = include_bytes!("../../fixtures/bec/notification_config.msgpack");
    const AVAILABLE: &[u8] = include_bytes!("../../fixtures/bec/available_services.msgpack");
    const PNG: &[u8] = include_bytes!("../../fixtures/bec/red.png");

    #[test]
    fn a_plain_string_is_one_text_item() {
        // self.connector.notify("beamline_ready", "Beamline checks passed and the station is ready for users.")
        let n = decode_notification(PLAIN).unwrap();
        assert_eq!(n.event, "beamline_ready");
        assert_eq!(
            n.items,
            vec![Item::Text(
                "Beamline checks passed and the station is ready for users.".into()
            )]
        );
    }

    #[test]
    fn the_documented_rich_example() {
        // msg.add_text("Sample mount failed", bold=True, color="red")
        // msg.add_text(" Please check the robot status before retrying.")
        // msg.add_tags(["sample-exchange", "robot"])
        let n = decode_notification(RICH).unwrap();
        assert_eq!(n.event, "sample_mount_failed");
        assert_eq!(
            n.items,
            vec![
                Item::Text(
                    r#"<p><mark class="pen-red"><strong>Sample mount failed</strong></mark></p>"#
                        .into()
                ),
                Item::Text(" Please check the robot status before retrying.".into()),
                Item::Tags(vec!["sample-exchange".into(), "robot".into()]),
            ]
        );
    }

    #[test]
    fn a_file_keeps_its_bytes() {
        let n = decode_notification(STYLES).unwrap();
        assert_eq!(n.event, "alarm_major");
        let file = n.items.iter().find_map(|i| match i {
            Item::File {
                filename,
                mime_type,
                data,
                ..
            } => Some((filename.as_str(), mime_type.as_str(), data.as_slice())),
            _ => None,
        });
        assert_eq!(file, Some(("red.png", "image/png", PNG)));
        assert!(n.items.contains(&Item::Text("a < b & c".into())));
    }

    #[test]
    fn stickers_and_giphies() {
        let n = decode_notification(STICKER).unwrap();
        assert_eq!(
            n.items,
            vec![
                Item::Text("Scan 42 done".into()),
                Item::Sticker("abc:1".into()),
                Item::Giphy("https://giphy.com/x.gif".into()),
            ]
        );
    }

    #[test]
    fn routes_as_set_auto_notifications_writes_them() {
        let r = decode_routes(ROUTES).unwrap();
        let t = |s: &str, scopes: &[&str]| Target {
            service_name: s.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(r["new_scan"], vec![t("scilog", &["default"])]);
        assert_eq!(
            r["alarm_major"],
            vec![
                t("signal", &["beamline-ops"]),
                t("signal", &[]),
                t("teams", &["teams"])
            ]
        );
    }

    #[test]
    fn the_wrong_message_is_refused_not_misread() {
        assert!(matches!(
            decode_notification(ROUTES),
            Err(CodecError::WrongType { .. })
        ));
        assert!(matches!(
            decode_routes(RICH),
            Err(CodecError::WrongType { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            &b""[..],
            b"\xc1",
            b"\x92\x01",
            b"\xdd\xff\xff\xff\xff",
            b"{\"event\": \"x\"}",
        ] {
            assert!(decode_notification(bad).is_err(), "{bad:?}");
            assert!(decode_routes(bad).is_err(), "{bad:?}");
        }
        // Every cut of a real message.
        for n in 0..RICH.len() {
            assert!(decode_notification(&RICH[..n]).is_err());
        }
        let mut longer = RICH.to_vec();
        longer.push(0);
        assert_eq!(decode_notification(&longer), Err(CodecError::Trailing));
    }

    #[test]
    fn what_we_write_reads_as_bec_writes_it() {
        let ours = encode_available(
            &[
                ServiceSwitch {
                    service_type: "signal",
                    enabled: true,
                    default: None,
                },
                ServiceSwitch {
                    service_type: "teams",
                    enabled: true,
                    default: Some("teams".into()),
                },
                ServiceSwitch {
                    service_type: "scilog",
                    enabled: true,
                    default: Some("default".into()),
                },
            ],
            &[
                Offered {
                    service_type: "scilog",
                    scope: "default".into(),
                    extra: vec![("logbook_id", Some("lb1".into()))],
                },
                Offered {
                    service_type: "signal",
                    scope: "beamline-ops".into(),
                    extra: vec![("group_id", Some("g1".into())), ("group_link", None)],
                },
                Offered {
                    service_type: "teams",
                    scope: "teams".into(),
                    extra: vec![("workflow_webhook_url", Some("x".into()))],
                },
            ],
        );
        assert_eq!(decode_available(&ours), decode_available(AVAILABLE));
        let a = decode_available(&ours).unwrap();
        assert_eq!(a["scilog"], (true, vec!["default".to_string()]));
    }
}
