//! What `publish_services` tells BEC's clients: BEC's
//! `info/messaging_services/available_messaging_services` (an
//! `AvailableMessagingServicesMessage`) describing the services and scopes we serve.
//!
//! BEC's client enables `bec.messaging.<service>` only when that message says so, and
//! accepts only the scopes it lists: without Atlas nobody writes it, and
//! `set_auto_notifications` refuses every call. We list, for each BEC service that
//! `bec.services` maps to a configured service of ours, every scope of that service
//! (SciLog with its `logbook_id`, Signal with its `group_id`), and our default scope as
//! BEC's default. A Teams workflow URL is a credential: it is never written to Redis,
//! the field BEC's model requires holds an empty string.
//!
//! A deployment whose Atlas also writes this stream must not turn this on: the last
//! entry wins in BEC's client, and two backends would each deliver the same route.

use crate::config::{Config, Service};
use crate::messengers::signal::Target as SignalTarget;

use super::codec::{Offered, ServiceSwitch, encode_available};

/// How many entries of the stream are kept: BEC's client reads them all from the start
/// and keeps the last.
pub const STREAM_MAXLEN: usize = 10;

/// The message to XADD (field `data`), for `config`.
pub fn available(config: &Config) -> Vec<u8> {
    let Some(bec) = &config.bec else {
        return encode_available(&[], &[]);
    };
    let mut switches = Vec::new();
    let mut offered = Vec::new();
    for name in super::config::bec_services() {
        let service_type: &'static str = name;
        let ours = bec.service(name);
        let scopes = ours.and_then(|s| config.scopes(s)).unwrap_or_default();
        switches.push(ServiceSwitch {
            service_type,
            enabled: !scopes.is_empty(),
            default: ours
                .and_then(|s| config.default_scope(s))
                .map(str::to_string),
        });
        let Some(ours) = ours else { continue };
        for scope in scopes {
            let extra = match service_type {
                "scilog" => vec![(
                    "logbook_id",
                    Some(scilog_logbook(config, ours, scope).unwrap_or_default()),
                )],
                "signal" => vec![
                    ("group_id", signal_group(config, ours, scope)),
                    ("group_link", None),
                ],
                _ => vec![("workflow_webhook_url", Some(String::new()))],
            };
            offered.push(Offered {
                service_type,
                scope: scope.to_string(),
                extra,
            });
        }
    }
    encode_available(&switches, &offered)
}

fn scilog_logbook(config: &Config, ours: Service, scope: &str) -> Option<String> {
    match ours {
        Service::Scilog => config.scilog.as_ref()?.scopes.get(scope).cloned(),
        _ => None,
    }
}

fn signal_group(config: &Config, ours: Service, scope: &str) -> Option<String> {
    match (ours, config.signal.as_ref()?.scopes.get(scope)?) {
        (Service::Signal, SignalTarget::Group(g)) => Some(g.clone()),
        _ => None,
    }
}
