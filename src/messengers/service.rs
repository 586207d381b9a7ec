//! What a service is to the rest of protowatch: two traits every service module
//! implements, and the one list ([`services!`], invoked in `messengers/mod.rs`) that
//! turns the modules into the [`Service`](super::Service) names, the config's service
//! sections and the [`Messenger`](super::Messenger) that sends.
//!
//! A service is one module because everything about it changes together: a new key in
//! its section needs its validation, its schema, its masking and the code that uses it.
//! Config loading, routes, the outbox, the API's channels, the metrics, `check-config`
//! and `test-notify` know services only through this list, so adding one is its module
//! and one line there.
//!
//! The list is a macro rather than a `Vec<Box<dyn …>>` because what it makes is types:
//! an enum of service names that the CLI, the routes and the store spell, a struct with
//! one typed section each (`config.mail`), an enum of messengers whose `send` futures
//! stay `Send` without boxing. Each arm is a plain match on concrete types.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::probe::Check;
use super::{Notification, SendError};
use crate::settings::check::Checker;

/// A service's config section, resolved: what the file says, defaults filled.
pub trait ServiceConfig: Sized + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The section's key in the file, and the service's name in routes, metrics,
    /// destinations (`signal:oncall`) and the CLI.
    const NAME: &'static str;
    /// The keys of each object of the section, by JSON path (`webhook.scopes.*`), for
    /// `KNOWN_KEYS` and the schema's tests: those of the section's struct
    /// ([`crate::settings::section::keys`]).
    fn keys() -> Vec<(&'static str, &'static [&'static str])>;
    /// Messages a minute to one scope unless `throttle.per_minute.<name>` says otherwise;
    /// `None`: not paced, and no such key (Alertmanager paces itself).
    const PER_MINUTE: Option<u32>;
    /// How many events one message shows in full; the rest of a digest is counted.
    const SHOWN_PER_MESSAGE: usize;
    /// The implicit routing sends it alarms only, not a script's messages (Alertmanager).
    const ALARMS_ONLY: bool = false;
    /// The section as the file has it: what `load` reads (with `settings::section`), the
    /// JSON Schema and the keys are derived from it.
    type File: schemars::JsonSchema;
    type Messenger: Deliver;

    /// Reads the section at `NAME`, reporting each problem with its JSON path; `None`
    /// when it cannot be used (the problems say why).
    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self>;
    /// The section as `check-config` prints it: resolved, every secret masked.
    fn masked(&self) -> Value;
    /// Each secret by the name a reload logs when it changed (`mail.password`), with its
    /// value to compare. Never printed.
    fn secrets(&self) -> Vec<(&'static str, String)>;
    /// The scope names, sorted.
    fn scopes(&self) -> Vec<&str>;
    fn default_scope(&self) -> Option<&str>;
    /// Who or what a scope reaches, as `test-notify` shows it; never a secret.
    fn reaches(&self, scope: &str) -> String;
    /// The sending side, built once per config.
    fn messenger(&self) -> Result<Self::Messenger, String>;
}

/// A configured service, ready to send.
// Only ever called on concrete types, through the list's enum: the futures' auto
// traits are known there, so no `Send` bound needs to be spelled out here.
#[allow(async_fn_in_trait)]
pub trait Deliver: Send + Sync {
    /// The longest one send may take, whole.
    fn timeout(&self) -> Duration;
    /// Sends one notification to one scope; the error says whether trying again helps.
    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError>;
    /// `check-config --probe`: each step a send would take, reported as it finishes,
    /// without sending anything.
    async fn probe(&self, report: &mut dyn FnMut(Check));
    /// Takes what the service's running side left for the sender (Telegram's ledger);
    /// called on each messenger the agent builds, at start and on reload.
    fn attach(&mut self, _links: &super::runtime::Links) {}
}

/// Makes, from one line per service (`Variant => field: module::Config`), the
/// [`Service`](super::Service) enum, the [`Sections`](super::Sections) of the config and
/// the [`Messenger`](super::Messenger) enum, each dispatching to the modules.
///
/// A service with a long-lived side names it on its line: `[runs module::start]` (a
/// [`runtime::Start`](super::runtime::Start), started by [`Sections::start`] when its
/// section is there) and `[worker module::worker]` (a
/// [`runtime::Worker`](super::runtime::Worker) that the outbox runs for each of its
/// destinations in place of its own). Nothing outside the module and its line knows it.
macro_rules! services {
    ($($variant:ident => $field:ident: $config:ty
        $([runs $start:path])? $([worker $worker:path])?),+ $(,)?) => {
        /// A service protowatch delivers to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Service {
            $($variant),+
        }

        const SERVICE_COUNT: usize = [$(stringify!($variant)),+].len();

        impl Service {
            /// Every service, in the order they are listed and written.
            pub const ALL: [Service; SERVICE_COUNT] = [$(Service::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Service::$variant => <$config as ServiceConfig>::NAME),+
                }
            }

            /// Reads back what `as_str` wrote.
            pub fn parse(s: &str) -> Option<Service> {
                Service::ALL.into_iter().find(|x| x.as_str() == s)
            }

            /// Messages a minute to one scope by default; `None`: not paced.
            pub fn default_per_minute(self) -> Option<u32> {
                match self {
                    $(Service::$variant => <$config as ServiceConfig>::PER_MINUTE),+
                }
            }

            /// How many events one message shows in full.
            pub fn shown_per_message(self) -> usize {
                match self {
                    $(Service::$variant => <$config as ServiceConfig>::SHOWN_PER_MESSAGE),+
                }
            }

            /// The worker of a service that delivers its rows itself; `None`: the
            /// outbox's own.
            pub fn worker(self) -> Option<$crate::messengers::runtime::Worker> {
                match self {
                    $(Service::$variant => {
                        None$(.or(Some($worker as $crate::messengers::runtime::Worker)))?
                    }),+
                }
            }

            /// Whether the implicit routing sends it alarms only.
            pub fn alarms_only(self) -> bool {
                match self {
                    $(Service::$variant => <$config as ServiceConfig>::ALARMS_ONLY),+
                }
            }

            /// The keys of every service's section, by JSON path.
            pub fn known_keys() -> Vec<(&'static str, &'static [&'static str])> {
                let mut out = Vec::new();
                $(out.extend(<$config as ServiceConfig>::keys());)+
                out
            }

            /// Each service's section as the schema describes it.
            pub fn schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema)> {
                vec![$((
                    <$config as ServiceConfig>::NAME,
                    generator.subschema_for::<<$config as ServiceConfig>::File>(),
                )),+]
            }
        }

        impl std::fmt::Display for Service {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// The service sections of the config, each `None` when the file has none.
        #[derive(Debug, Clone, Default)]
        pub struct Sections {
            $(pub $field: Option<$config>),+
        }

        impl Sections {
            /// Reads every service's section of the file's top level.
            pub(crate) fn load(
                c: &mut $crate::settings::check::Checker,
                top: &serde_json::Map<String, serde_json::Value>,
                base: &std::path::Path,
            ) -> Sections {
                Sections {
                    $($field: top
                        .get(<$config as ServiceConfig>::NAME)
                        .and_then(|v| <$config as ServiceConfig>::load(c, v, base))),+
                }
            }

            /// The scope names of `service`, sorted; `None` when it is not configured.
            pub fn scopes(&self, service: Service) -> Option<Vec<&str>> {
                match service {
                    $(Service::$variant => self.$field.as_ref().map(ServiceConfig::scopes)),+
                }
            }

            /// The default scope of `service`; `None` when it has none or is not
            /// configured.
            pub fn default_scope(&self, service: Service) -> Option<&str> {
                match service {
                    $(Service::$variant => self.$field.as_ref()?.default_scope()),+
                }
            }

            /// Who a destination reaches, as the config names them (never a secret).
            pub fn reaches(&self, to: &Destination) -> String {
                match to.service {
                    $(Service::$variant => self
                        .$field
                        .as_ref()
                        .map(|s| s.reaches(&to.scope))
                        .unwrap_or_default()),+
                }
            }

            /// Each configured section, masked, under its key.
            pub fn masked(&self, out: &mut serde_json::Map<String, serde_json::Value>) {
                $(if let Some(s) = &self.$field {
                    out.insert(<$config as ServiceConfig>::NAME.into(), s.masked());
                })+
            }

            /// Every secret of every section, by name.
            pub fn secrets(&self) -> Vec<(&'static str, String)> {
                let mut out = Vec::new();
                $(if let Some(s) = &self.$field {
                    out.extend(s.secrets());
                })+
                out
            }

            /// Starts the long-lived side of each configured service that has one.
            pub fn start(
                &self,
                setup: $crate::messengers::runtime::Setup,
            ) -> $crate::messengers::runtime::Sides {
                $crate::messengers::runtime::Sides::start(setup, |_ctx| {
                    #[allow(unused_mut)]
                    let mut tasks = Vec::new();
                    $($(if let Some(s) = &self.$field {
                        let start: $crate::messengers::runtime::Start<$config> = $start;
                        tasks.extend(start(s, _ctx));
                    })?)+
                    tasks
                })
            }

            fn messengers(&self) -> Result<Vec<Messenger>, SetupError> {
                let mut out = Vec::new();
                $(if let Some(s) = &self.$field {
                    let m = s.messenger().map_err(|message| SetupError {
                        service: Service::$variant,
                        message,
                    })?;
                    out.push(Messenger::$variant(m));
                })+
                Ok(out)
            }
        }

        /// A configured service, ready to send.
        pub enum Messenger {
            $($variant(<$config as ServiceConfig>::Messenger)),+
        }

        impl Messenger {
            pub fn service(&self) -> Service {
                match self {
                    $(Messenger::$variant(_) => Service::$variant),+
                }
            }

            fn timeout(&self) -> std::time::Duration {
                match self {
                    $(Messenger::$variant(m) => Deliver::timeout(m)),+
                }
            }

            async fn deliver(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
                match self {
                    $(Messenger::$variant(m) => Deliver::send(m, scope, n).await),+
                }
            }

            /// Hands the sender what its service's running side left for it.
            fn attach(&mut self, links: &$crate::messengers::runtime::Links) {
                match self {
                    $(Messenger::$variant(m) => Deliver::attach(m, links)),+
                }
            }

            /// `check-config --probe` of this service.
            pub async fn probe(&self, report: &mut dyn FnMut(probe::Check)) {
                match self {
                    $(Messenger::$variant(m) => Deliver::probe(m, report).await),+
                }
            }
        }
    };
}

/// Adding a service, long-lived side included, is its module and one line of the list:
/// a made-up service with a running side and a worker of its own, listed here as
/// `messengers/mod.rs` lists the real ones, is started, reached by its sender and
/// stopped, and its worker is the outbox's to run, with no other code naming it.
#[cfg(test)]
// The list makes the whole of what a service is to the agent; the test uses a part.
#[allow(dead_code)]
mod a_new_service {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::Value;
    use tokio::task::JoinHandle;

    use crate::event::alert::Alert;
    use crate::messengers::probe;
    use crate::messengers::runtime::{self, Ctx, Links, Setup, Status, WorkerCtx};
    use crate::messengers::{Deliver, Notification, SendError, ServiceConfig};
    use crate::settings::check::Checker;
    use crate::store::{Store, StoreError};

    /// The module of the made-up service: its section, its sender, its running side.
    mod pager {
        use super::*;

        #[derive(Debug, Clone)]
        pub struct PagerConfig;

        /// What the running side leaves for the sender.
        pub struct Seen(pub &'static str);

        pub struct Pager {
            pub links: Option<Links>,
        }

        impl Pager {
            /// What the sender finds of its running side.
            pub fn found(&self) -> Option<&'static str> {
                Some(self.links.as_ref()?.get::<Seen>()?.0)
            }
        }

        impl ServiceConfig for PagerConfig {
            const NAME: &'static str = "pager";
            fn keys() -> Vec<(&'static str, &'static [&'static str])> {
                Vec::new()
            }
            const PER_MINUTE: Option<u32> = None;
            const SHOWN_PER_MESSAGE: usize = 1;
            type File = ();
            type Messenger = Pager;

            fn load(_: &mut Checker, _: &Value, _: &Path) -> Option<Self> {
                Some(PagerConfig)
            }
            fn masked(&self) -> Value {
                Value::Null
            }
            fn secrets(&self) -> Vec<(&'static str, String)> {
                Vec::new()
            }
            fn scopes(&self) -> Vec<&str> {
                vec!["default"]
            }
            fn default_scope(&self) -> Option<&str> {
                Some("default")
            }
            fn reaches(&self, _: &str) -> String {
                String::new()
            }
            fn messenger(&self) -> Result<Pager, String> {
                Ok(Pager { links: None })
            }
        }

        impl Deliver for Pager {
            fn timeout(&self) -> Duration {
                Duration::from_secs(1)
            }
            async fn send(&self, _: &str, _: &Notification<'_>) -> Result<(), SendError> {
                Ok(())
            }
            async fn probe(&self, _: &mut dyn FnMut(probe::Check)) {}
            fn attach(&mut self, links: &Links) {
                self.links = Some(links.clone());
            }
        }

        /// Its running side: leaves a note for the sender, and runs until shutdown.
        pub fn start(_: &PagerConfig, ctx: &Ctx) -> Vec<JoinHandle<()>> {
            ctx.links.put(Seen("started"));
            let stop = ctx.stop.clone();
            vec![tokio::spawn(async move { stop.cancelled().await })]
        }

        pub fn worker(_: WorkerCtx) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(async {})
        }
    }

    // What the service list needs in scope, as `messengers/mod.rs` has it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Destination {
        pub service: Service,
        pub scope: String,
    }
    #[derive(Debug)]
    pub struct SetupError {
        pub service: Service,
        pub message: String,
    }

    // The one line of the new service.
    services! {
        Pager => pager: pager::PagerConfig [runs pager::start] [worker pager::worker],
    }

    struct NoAgent(crate::messengers::Sections);

    impl runtime::Running for NoAgent {
        fn instrument(&self) -> &str {
            "IN5"
        }
        fn sections(&self) -> &crate::messengers::Sections {
            &self.0
        }
    }

    impl runtime::Alerts for NoAgent {
        fn get(&self, _: &Store, _: i64) -> Result<Option<Alert>, StoreError> {
            Ok(None)
        }
        fn by_key(&self, _: &Store, _: &str) -> Result<Option<Alert>, StoreError> {
            Ok(None)
        }
        fn list(&self, _: &Store, _: i64, _: bool) -> Result<Vec<Alert>, StoreError> {
            Ok(Vec::new())
        }
        fn touched(&self, _: &Store, _: &[String], _: i64) -> Result<Vec<Alert>, StoreError> {
            Ok(Vec::new())
        }
        fn dismiss(&self, _: &Store, _: i64, _: i64, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn snooze(&self, _: &Store, _: i64, _: i64, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn acknowledge(&self, _: &Store, _: i64, _: i64, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    impl runtime::Host for NoAgent {
        fn config(&self) -> Arc<dyn runtime::Running> {
            Arc::new(NoAgent(self.0.clone()))
        }
        fn resend(
            &self,
            _: &mut Store,
            _: &Alert,
        ) -> Result<Vec<super::super::Destination>, StoreError> {
            Ok(Vec::new())
        }
        fn status(&self, _: &Store) -> Result<Status, StoreError> {
            Ok(Status::default())
        }
        fn summary(&self, _: &Store, _: i64) -> Result<crate::event::Message, StoreError> {
            Ok(crate::event::Message::default())
        }
        fn silence(
            &self,
            _: &mut Store,
            _: &str,
            _: std::time::Duration,
            _: i64,
            _: &str,
        ) -> Result<Result<i64, String>, StoreError> {
            Ok(Err("no agent".into()))
        }
        fn silences(&self, _: &Store, _: i64) -> Result<Vec<runtime::SilenceView>, StoreError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn is_its_module_and_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::default();
        let sections = Sections {
            pager: Some(pager::PagerConfig),
        };
        let mut messengers = sections.messengers().unwrap();
        for m in &mut messengers {
            m.attach(&links);
        }
        let Messenger::Pager(sender) = &messengers[0];
        assert_eq!(sender.found(), None);
        let sides = sections.start(Setup {
            state_dir: dir.path().to_path_buf(),
            alerts: Arc::new(NoAgent(crate::messengers::Sections::default())),
            host: Arc::new(NoAgent(crate::messengers::Sections::default())),
            changes: tokio::sync::watch::channel(0).1,
            links: links.clone(),
            stop: tokio_util::sync::CancellationToken::new(),
        });
        // The sender, built before the side started (as the agent builds it), finds
        // what the side left.
        assert_eq!(sender.found(), Some("started"));
        assert!(Service::Pager.worker().is_some());
        tokio::time::timeout(Duration::from_secs(5), sides.stop())
            .await
            .expect("the running side ends at shutdown");
    }
}
