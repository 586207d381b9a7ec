//! `protowatch service install|uninstall|run`: the agent as a Windows service.
//!
//! `install` registers this executable with the service control manager, started
//! automatically, with `service run --config <file>` as its command line; `run` is what
//! the service control manager starts: it reports the service running, runs the agent,
//! and turns the stop request (and system shutdown) into the agent's graceful stop. A
//! service has no console, so it logs to `protowatch.log` in the state folder.
//!
//! The config and state live under `%ProgramData%\protowatch` unless `--config` says
//! otherwise (the state folder is the config's `state_dir`, relative to the config file).
//!
//! The service runs as its own virtual account, `NT SERVICE\protowatch`, not as
//! LocalSystem: it can read what it is given and nothing else on the PC, and on the
//! network it acts as the computer's account. `install` gives it full control of the
//! state folder (which nobody else but SYSTEM, Administrators and the group `protowatch`
//! may then read) and read access to each watched folder, and says what it could not
//! grant (a share is granted on its server: see packaging/windows/README.md).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::Subcommand;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{Cli, CliError};
use crate::config::Config;

pub const SERVICE_NAME: &str = "protowatch";
/// The service's virtual account: made by Windows with the service, for it alone.
const ACCOUNT: &str = r"NT SERVICE\protowatch";
const DISPLAY_NAME: &str = "protowatch instrument protocol notifier";
const DESCRIPTION: &str = "Follows the instrument's protocol files and sends errors by e-mail, Telegram, webhooks, Alertmanager, SciLog and Signal.";

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register protowatch as a Windows service that starts with the machine
    Install,
    /// Stop and remove the Windows service
    Uninstall,
    /// Run as the service (started by the service control manager, not by hand)
    Run,
}

/// `%ProgramData%\protowatch\config.json`: where a service's config lives by default.
pub fn default_config() -> PathBuf {
    let base = std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    base.join("protowatch").join("config.json")
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config.clone().unwrap_or_else(default_config)
}

fn scm_error(what: &str, e: windows_service::Error) -> CliError {
    CliError::failed(format!("{what}: {e}"))
}

pub fn run(cli: &Cli, cmd: &ServiceCommand) -> Result<(), CliError> {
    match cmd {
        ServiceCommand::Install => install(cli),
        ServiceCommand::Uninstall => uninstall(),
        ServiceCommand::Run => run_service(cli),
    }
}

fn install(cli: &Cli) -> Result<(), CliError> {
    let config = std::path::absolute(config_path(cli))
        .map_err(|e| CliError::usage(format!("config path: {e}")))?;
    // A service that cannot load its config would only fail at start: check now.
    let loaded = Config::load(&config)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find this executable: {e}")))?;
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| {
        scm_error(
            "cannot open the service control manager (run as administrator)",
            e,
        )
    })?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: vec![
            OsString::from("--config"),
            config.clone().into_os_string(),
            OsString::from("service"),
            OsString::from("run"),
        ],
        dependencies: vec![],
        account_name: Some(OsString::from(ACCOUNT)),
        account_password: None,
    };
    if manager
        .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS)
        .is_ok()
    {
        return Err(CliError::failed(format!(
            "the service {SERVICE_NAME:?} is already installed; remove it first with `protowatch service uninstall`"
        )));
    }
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .map_err(|e| scm_error("cannot create the service", e))?;
    let _ = service.set_description(DESCRIPTION);
    outln!(
        "installed the service {SERVICE_NAME:?} (account {ACCOUNT}) with config {}; start it with: sc.exe start {SERVICE_NAME}",
        config.display()
    );
    grant_access(&loaded);
    Ok(())
}

/// The state folder private to the service (and Administrators, SYSTEM, the group
/// `protowatch`); each watched folder readable by it.
fn grant_access(config: &Config) {
    if let Err(e) = std::fs::create_dir_all(&config.state_dir) {
        eprintln!(
            "protowatch: cannot create the state folder {}: {e}",
            config.state_dir.display()
        );
    }
    crate::private::secure_dir(&config.state_dir);
    let Some(sid) = crate::private::sid_of(ACCOUNT) else {
        eprintln!(
            "protowatch: the account {ACCOUNT} is not known yet; grant it read access to the protocol folders by hand"
        );
        return;
    };
    for w in &config.watch {
        let dir = static_prefix(&w.path);
        let grant = format!("*{sid}:(OI)(CI)RX");
        let ok = std::process::Command::new("icacls")
            .arg(&dir)
            .args(["/grant", &grant])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            outln!("{ACCOUNT} may read {}", dir.display());
        } else {
            eprintln!(
                "protowatch: could not let {ACCOUNT} read {}; grant it by hand: icacls \"{}\" /grant \"{ACCOUNT}:(OI)(CI)RX\" (a share: on its server, to this computer's account)",
                dir.display(),
                dir.display()
            );
        }
    }
}

/// The folder a glob starts in: its components before the first with a wildcard.
fn static_prefix(glob: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in std::path::Path::new(glob).components() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            break;
        }
        out.push(c);
    }
    // A glob naming one file: its folder.
    if out.as_os_str().len() == glob.len() {
        out.pop();
    }
    out
}

fn uninstall() -> Result<(), CliError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| {
            scm_error(
                "cannot open the service control manager (run as administrator)",
                e,
            )
        })?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| scm_error("cannot open the service", e))?;
    if let Ok(status) = service.query_status()
        && status.current_state != ServiceState::Stopped
    {
        let _ = service.stop();
        for _ in 0..60 {
            std::thread::sleep(Duration::from_millis(500));
            if service
                .query_status()
                .is_ok_and(|s| s.current_state == ServiceState::Stopped)
            {
                break;
            }
        }
    }
    service
        .delete()
        .map_err(|e| scm_error("cannot delete the service", e))?;
    outln!("removed the service {SERVICE_NAME:?}");
    Ok(())
}

/// The config file the service was installed with, for `service_main`.
static SERVICE_CONFIG: OnceLock<PathBuf> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

fn run_service(cli: &Cli) -> Result<(), CliError> {
    let _ = SERVICE_CONFIG.set(config_path(cli));
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
        scm_error(
            "cannot start as a service (this command is for the service control manager; use `protowatch run` by hand)",
            e,
        )
    })
}

fn service_main(_arguments: Vec<OsString>) {
    // Errors have nowhere to go but the log file (set up in `serve`) and the exit code.
    let _ = serve();
}

fn status(state: ServiceState, exit: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: Duration::from_secs(if state == ServiceState::StopPending {
            30
        } else {
            0
        }),
        process_id: None,
    }
}

fn serve() -> Result<(), CliError> {
    // The agent's one stop signal, given by the service manager's stop or the system's
    // shutdown.
    let stop = tokio_util::sync::CancellationToken::new();
    let on_stop = stop.clone();
    let handle = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            tracing::info!("service stop requested");
            on_stop.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })
    .map_err(|e| scm_error("cannot register the service control handler", e))?;

    let config_file = SERVICE_CONFIG.get().cloned().unwrap_or_else(default_config);
    let result = Config::load(&config_file)
        .map_err(CliError::from)
        .and_then(|config| {
            init_file_log(&config);
            super::check_config::refusals(&config)?;
            tracing::info!(config = %config_file.display(), "service starting");
            let _ = handle.set_service_status(status(ServiceState::Running, 0));
            let rt = super::runtime()?;
            rt.block_on(crate::agent::run(config, stop))
                .map_err(|e| CliError::failed(e.to_string()))
        });
    if let Err(e) = &result {
        tracing::error!(error = %e.message, "service failed");
    }
    let _ = handle.set_service_status(status(ServiceState::StopPending, 0));
    let code = if result.is_ok() { 0 } else { 1 };
    let _ = handle.set_service_status(status(ServiceState::Stopped, code));
    result
}

/// A service has no console: log to `protowatch.log` in the state folder.
fn init_file_log(config: &Config) {
    let _ = std::fs::create_dir_all(&config.state_dir);
    let path = config.state_dir.join("protowatch.log");
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let filter =
        super::logging::filter(None).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    super::logging::init(
        filter,
        super::logging::LogFormat::Human,
        super::logging::Sink::File(file),
    );
}
