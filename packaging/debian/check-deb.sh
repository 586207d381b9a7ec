#!/usr/bin/env bash
# The Debian package as an admin meets it: builds it (build-deb.sh), installs it, checks
# the installed binary, config, unit and files, and purges it again, checking that the
# purge leaves nothing behind. Run by .ci/run; needs root, or sudo.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
fail() { echo "check-deb: $*" >&2; exit 1; }

# dpkg-dev: cargo-deb reads the binary's library dependencies with dpkg-shlibdeps.
# systemd: systemd-analyze; man-db: its check that the unit's man page exists.
tools=(dpkg-dev systemd man-db python3)
missing=()
for p in "${tools[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

deb=$(bash packaging/debian/build-deb.sh | tail -n 1)
[ -f "$deb" ] || fail "build-deb.sh named no package file: '$deb'"
echo "built $deb"

# A protowatch that was installed before (a developer's or an operator's machine), or
# removed with its config kept, is upgraded for the checks but never purged.
status=$(dpkg-query -W -f='${db:Status-Status}' protowatch 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != not-installed ]; then
  keep=yes
  echo "protowatch was on this machine before ($status): upgraded, and left installed" >&2
else
  keep=no
  trap '$SUDO dpkg --purge protowatch >/dev/null 2>&1 || true' EXIT
fi

$SUDO dpkg -i "$deb" >/dev/null
/usr/bin/protowatch --version
# The packaged config is refused until the admin fills in its placeholders: as the
# service's user (who reads the config and its secret files), every problem is a
# placeholder — none a file it cannot read, none a warning about who may read a secret.
status=0
out=$($SUDO runuser -u protowatch -- /usr/bin/protowatch check-config \
  --config /etc/protowatch/config.json 2>&1 >/dev/null) || status=$?
[ "$status" = 2 ] || fail "check-config on the packaged config exited $status, not 2: $out"
for key in mail.server 'mail.recipients\[0\]' telegram.channel-id 'watch\[0\].path' telegram.bot-id_file; do
  grep -q ": $key: .*REPLACE-" <<<"$out" || fail "check-config does not name the placeholder at $key: $out"
done
others=$(grep -v 'REPLACE-' <<<"$out" || true)
[ -z "$others" ] || fail "check-config finds more than placeholders in the packaged config: $others"
# Filled in, the config is accepted, without warnings.
filled=$(mktemp -d)
sed -e 's/"REPLACE-with-your-SMTP-server"/"smtp.example.org"/' \
  -e 's/"REPLACE-with-the-address-to-alert"/"ops@example.org"/' \
  -e 's/"REPLACE-with-the-chat-id"/"-1001234567890"/' \
  -e 's#"REPLACE-with-the-protocol-folder/\*.log"#"'"$filled"'/protocol/*.log"#' \
  -e 's#"secrets/telegram-bot-id"#"'"$filled"'/bot-token"#' \
  /etc/protowatch/config.json >"$filled/config.json"
# A folder that exists: one that does not is a warning (a typo, most often).
mkdir "$filled/protocol"
echo "123456:ABCdef" >"$filled/bot-token"
chmod 0600 "$filled/bot-token"
chmod 0755 "$filled"
$SUDO chown -R protowatch:protowatch "$filled"
warnings=$($SUDO runuser -u protowatch -- /usr/bin/protowatch check-config \
  --config "$filled/config.json" 2>&1 >/dev/null) \
  || fail "the packaged config with its placeholders filled in is refused: $warnings"
! grep -q '^warning:' <<<"$warnings" \
  || fail "check-config warns about the packaged config and secrets: $warnings"
$SUDO rm -rf "$filled"
# The group protowatch may read the config (to use the agent), never the credentials.
[ "$($SUDO stat -c %U:%G:%a /etc/protowatch/config.json)" = root:protowatch:640 ] \
  || fail "/etc/protowatch/config.json is not root:protowatch 0640"
[ "$($SUDO stat -c %U:%G:%a /etc/protowatch/secrets)" = protowatch:protowatch:700 ] \
  || fail "/etc/protowatch/secrets is not protowatch:protowatch 0700"
[ "$($SUDO stat -c %U:%G:%a /etc/protowatch/secrets/telegram-bot-id)" = protowatch:protowatch:600 ] \
  || fail "/etc/protowatch/secrets/telegram-bot-id is not protowatch:protowatch 0600"
systemd-analyze verify /usr/lib/systemd/system/protowatch.service

listed=$(dpkg -L protowatch)
for f in /usr/bin/protowatch /etc/protowatch/config.json /usr/lib/systemd/system/protowatch.service \
  /usr/share/man/man1/protowatch.1.gz /usr/share/man/man1/protowatch-send-message.1.gz \
  /usr/share/protowatch/python/bot/__init__.py /usr/share/protowatch/python/bot/messangers.py \
  /usr/share/doc/protowatch/README.md; do
  grep -qx "$f" <<<"$listed" || fail "dpkg -L protowatch does not list $f"
done
dpkg-query -W -f='${Conffiles}\n' protowatch | grep -q '^ /etc/protowatch/config.json ' \
  || fail "/etc/protowatch/config.json is not a conffile"
# The old bot's scripts import the shim as they imported the bot.
PYTHONPATH=/usr/share/protowatch/python python3 -c 'from bot import messangers; messangers.send_message' \
  || fail "the Python module does not import as 'from bot import messangers'"

if [ "$keep" = no ]; then
  $SUDO dpkg --purge protowatch >/dev/null
  trap - EXIT
  for p in /usr/bin/protowatch /etc/protowatch /var/lib/protowatch /usr/share/protowatch; do
    [ ! -e "$p" ] || fail "$p is left after dpkg --purge"
  done
  if $SUDO dpkg-statoverride --list /etc/protowatch/config.json >/dev/null; then
    fail "the statoverride of the config is left after dpkg --purge"
  fi
fi
echo "Debian package OK"
