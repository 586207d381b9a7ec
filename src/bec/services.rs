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

use crate::messengers::Service;

use super::Served;
use super::codec::{Offered, ServiceSwitch, encode_available};

/// How many entries of the stream are kept: BEC's client reads them all from the start
/// and keeps the last.
pub const STREAM_MAXLEN: usize = 10;

/// The message to XADD (field `data`), for what we serve.
pub fn available(ours: &Served) -> Vec<u8> {
    let mut switches = Vec::new();
    let mut offered = Vec::new();
    for name in super::config::bec_services() {
        let service_type: &'static str = name;
        let service = ours.service(name);
        let scopes = service.and_then(|s| ours.scopes(s)).unwrap_or_default();
        switches.push(ServiceSwitch {
            service_type,
            enabled: !scopes.is_empty(),
            default: service
                .and_then(|s| ours.default_scope(s))
                .map(str::to_string),
        });
        let Some(service) = service else { continue };
        for scope in scopes {
            let extra = match service_type {
                "scilog" => vec![(
                    "logbook_id",
                    Some(
                        (service == Service::Scilog)
                            .then(|| ours.logbook(scope))
                            .flatten()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                )],
                "signal" => vec![
                    (
                        "group_id",
                        (service == Service::Signal)
                            .then(|| ours.signal_group(scope))
                            .flatten()
                            .map(str::to_string),
                    ),
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
