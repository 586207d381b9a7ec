//! Writes the man pages of protowatch from the clap definition of its command line:
//! `protowatch.1` and one `protowatch-<command>.1` per subcommand, into the folder given
//! as the only argument. `packaging/debian/build-deb.sh` runs it for the Debian package.
//!
//! An example rather than part of the binary or a build script: the pages are made once
//! per package, so the runtime binary carries no man page generator, and every build
//! does not pay for one. They follow the CLI as it is, subcommands added later included;
//! only what clap cannot know (files, environment, exit codes) is written here.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

/// The sections clap knows nothing of, in roff. The paths are those of the Debian
/// package; the defaults are those of the program.
const MAIN_PAGE_TAIL: &str = r#".SH "EXIT STATUS"
.TP
.B 0
ok
.TP
.B 1
the work failed: a destination refused a message or could not be reached
.TP
.B 2
bad usage or a bad config file
.SH ENVIRONMENT
.TP
.B PROTOWATCH_CONFIG
the config file when \fB\-\-config\fR is not given (else \fI./config.json\fR)
.TP
.B RUST_LOG
the log filter when \fB\-\-log\-level\fR is not given (default \fIinfo\fR); logs go to standard error
.TP
.B NOTIFY_SOCKET
set by systemd: \fBrun\fR reports readiness, reloads and its stop there
.SH FILES
.TP
.I /etc/protowatch/config.json
the config of the service (JSON; \fBprotowatch check\-config\fR checks it)
.TP
.I /var/lib/protowatch
its state: the SQLite database of checkpoints, alerts and queued messages
.TP
.I /usr/lib/systemd/system/protowatch.service
the systemd unit; \fBsystemctl reload protowatch\fR re\-reads the config
.TP
.I /usr/share/protowatch/python/bot
the Python module \fBbot.messangers\fR of the old bot, sending through protowatch
.TP
.I /usr/share/doc/protowatch/README.md
the full manual: config keys, the protocol grammar, the HTTP API
"#;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: manpage OUT_DIR");
        return ExitCode::from(2);
    };
    match write_pages(Path::new(&out)) {
        Ok(pages) => {
            for page in pages {
                println!("{}", page.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("manpage: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_pages(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let mut cmd = protowatch::cli::Cli::command().disable_help_subcommand(true);
    // Fills in what derive leaves to parse time: global options on every subcommand,
    // and the display names ("protowatch-send-message") the page names come from.
    cmd.build();
    let mut pages = vec![write_page(out, &cmd, Some(MAIN_PAGE_TAIL))?];
    let mut stack: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
    while let Some(sub) = stack.pop() {
        if sub.is_hide_set() {
            continue;
        }
        stack.extend(sub.get_subcommands().cloned());
        pages.push(write_page(out, &sub, None)?);
    }
    Ok(pages)
}

fn write_page(out: &Path, cmd: &clap::Command, tail: Option<&str>) -> std::io::Result<PathBuf> {
    let source = format!("protowatch {}", env!("CARGO_PKG_VERSION"));
    let man = Man::new(cmd.clone()).source(source);
    let path = out.join(man.get_filename());
    let mut w = BufWriter::new(File::create(&path)?);
    match tail {
        None => man.render(&mut w)?,
        // clap_mangen's own order, with ours before VERSION as man pages usually have it.
        Some(tail) => {
            man.render_title(&mut w)?;
            man.render_name_section(&mut w)?;
            man.render_synopsis_section(&mut w)?;
            man.render_description_section(&mut w)?;
            man.render_options_section(&mut w)?;
            man.render_subcommands_section(&mut w)?;
            w.write_all(tail.as_bytes())?;
            man.render_version_section(&mut w)?;
        }
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(path)
}
