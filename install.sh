#!/usr/bin/env bash
# CallGuard installer for Raspberry Pi OS Bookworm / Trixie (Debian 12 / 13).
#
#   sudo ./install.sh                     install, or upgrade in place (lists, log, config kept)
#   sudo ./install.sh --uninstall         remove the program; keep the config and the lists
#   sudo ./install.sh --uninstall --purge remove everything, the lists and the user too
#   ./install.sh --root /tmp/x            test mode: no root needed, nothing on the system changed
#
# Theory of operation: every path the installer touches is "$ROOT/..." (ROOT is empty on a
# real install). Every command that changes the system (apt-get, useradd, groupadd, usermod,
# userdel, groupdel, chown, systemctl, udevadm, and the venv/pip step) goes through `run`,
# which in test mode (--root) writes it to $ROOT/install-commands.log instead of running it.
# Copying files, making directories and chmod are always real. Questions about the system
# (does the user exist?) read $ROOT/etc/passwd and $ROOT/etc/group in test mode.
#
# Every unit gets the same code: the Python libraries come from the lock file
# requirements/callguard.txt (exact versions, the sha256 of every file; `make lock` writes it),
# installed with --require-hashes; CallGuard itself is installed with --no-deps, so nothing
# unpinned comes in. The lock is kept as /opt/callguard/callguard.lock for `callguard --version`.
set -euo pipefail
umask 022 # /opt/callguard must be readable by the callguard user whatever root's umask is

readonly PACKAGES="python3-venv python3-lgpio espeak-ng alsa-utils"
readonly USER_NAME=callguard
readonly USER_GROUPS=dialout,gpio,audio
readonly MIN_PYTHON=3.11
readonly LOCK_SRC=requirements/callguard.txt # in the source folder
readonly LOCK_NAME=callguard.lock            # its copy in the program folder (callguard.version)

usage() {
	cat <<'EOF'
Usage: sudo ./install.sh [--root DIR] [--uninstall [--purge]] [--source DIR] [--no-start] [--help]

Installs CallGuard (or upgrades it in place, keeping the lists, the call log and the config).

  --root DIR    test mode: put every file under DIR and write the system commands to
                DIR/install-commands.log instead of running them (no root needed)
  --uninstall   stop and remove CallGuard; keep /etc/callguard and /var/lib/callguard
  --purge       with --uninstall: also remove the config, the lists, the call log and the
                callguard user
  --source DIR  install from this CallGuard source folder (default: the folder install.sh is in)
  --no-start    install and enable the service, but do not start it now
  --help        show this help
EOF
}

usage_error() {
	printf 'install.sh: %s\n\n' "$1" >&2
	usage >&2
	exit 2
}

# --- output -----------------------------------------------------------------------------------
STEP_TOTAL=8
STEP_NAME=""

step() { # step N "what happens"
	STEP_NAME="step $1 of $STEP_TOTAL ($2)"
	printf '\n==> Step %s of %s: %s\n' "$1" "$STEP_TOTAL" "$2"
}
say() { printf '    %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*" >&2; }
die() {
	printf '\nERROR: %s\n' "$*" >&2
	exit 1
}

on_exit() {
	local rc=$?
	if [ -n "${STAGING:-}" ]; then rm -rf "$STAGING"; fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ -n "$STEP_NAME" ]; then
		printf '\nThe installer stopped at %s before finishing.\n' "$STEP_NAME" >&2
		printf 'Fix the problem shown above and run it again: running it twice is safe.\n' >&2
	fi
}
trap on_exit EXIT

# --- doing things, or writing them down in test mode --------------------------------------------
# quote ARGS...: the command as one line a shell would read back (quotes only where needed).
quote() {
	local out="" a
	for a in "$@"; do
		case "$a" in
		"" | *[!A-Za-z0-9_./:=,+@%-]*) a="'${a//\'/\'\\\'\'}'" ;;
		esac
		out+="${out:+ }$a"
	done
	printf '%s' "$out"
}

run() {
	if [ -n "$ROOT" ]; then
		printf '%s\n' "$(quote "$@")" >>"$LOG"
		say "(test mode, not run) $(quote "$@")"
	else
		really "$@"
	fi
}

# really: run it, even in test mode (building the program folder under $ROOT for real).
really() {
	say "running: $(quote "$@")"
	"$@"
}

have_user() {
	if [ -n "$ROOT" ]; then
		[ -f "$ROOT/etc/passwd" ] && grep -q "^$1:" "$ROOT/etc/passwd"
	else
		getent passwd "$1" >/dev/null
	fi
}

have_group() {
	if [ -n "$ROOT" ]; then
		[ -f "$ROOT/etc/group" ] && grep -q "^$1:" "$ROOT/etc/group"
	else
		getent group "$1" >/dev/null
	fi
}

# os_field FILE KEY: the value of KEY in an os-release file, without quotes ("" if absent).
os_field() {
	sed -n "s/^$2=//p" "$1" | sed -n '1{s/^"\(.*\)"$/\1/;s/^'"'"'\(.*\)'"'"'$/\1/;p;}'
}

# --- options ------------------------------------------------------------------------------------
ARGS="$*"
ROOT=""
ROOT_GIVEN=0
SOURCE=""
UNINSTALL=0
PURGE=0
START=1

while [ "$#" -gt 0 ]; do
	case "$1" in
	--root)
		if [ "$#" -lt 2 ] || [ -z "$2" ]; then usage_error "--root needs a folder, e.g. --root /tmp/callguard-test"; fi
		ROOT=$2 ROOT_GIVEN=1
		shift 2
		;;
	--root=*)
		ROOT=${1#--root=} ROOT_GIVEN=1
		[ -n "$ROOT" ] || usage_error "--root needs a folder, e.g. --root /tmp/callguard-test"
		shift
		;;
	--source)
		if [ "$#" -lt 2 ] || [ -z "$2" ]; then usage_error "--source needs a folder: the CallGuard source (the one with pyproject.toml)"; fi
		SOURCE=$2
		shift 2
		;;
	--source=*)
		SOURCE=${1#--source=}
		[ -n "$SOURCE" ] || usage_error "--source needs a folder: the CallGuard source (the one with pyproject.toml)"
		shift
		;;
	--uninstall) UNINSTALL=1; shift ;;
	--purge) PURGE=1; shift ;;
	--no-start) START=0; shift ;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown option '$1'" ;;
	esac
done

if [ "$PURGE" -eq 1 ] && [ "$UNINSTALL" -eq 0 ]; then
	usage_error "--purge only goes with --uninstall: sudo ./install.sh --uninstall --purge"
fi

if [ "$ROOT_GIVEN" -eq 1 ]; then
	mkdir -p -- "$ROOT" || usage_error "--root $ROOT: cannot create that folder"
	ROOT=$(cd -- "$ROOT" && pwd)
	[ "$ROOT" != / ] || usage_error "--root / is not test mode: leave --root out for a real install"
fi

if [ -z "$SOURCE" ]; then
	SOURCE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
elif [ -d "$SOURCE" ]; then
	SOURCE=$(cd -- "$SOURCE" && pwd)
else
	usage_error "--source $SOURCE: there is no such folder"
fi

readonly LOG="$ROOT/install-commands.log"
readonly VENV_REAL=/opt/callguard
readonly VENV="$ROOT$VENV_REAL"
readonly CONF_DIR="$ROOT/etc/callguard"
readonly CONF="$CONF_DIR/callguard.toml"
readonly STATE_DIR="$ROOT/var/lib/callguard"
readonly UNIT="$ROOT/etc/systemd/system/callguard.service"
readonly WEB_UNIT="$ROOT/etc/systemd/system/callguard-web.service"
readonly LINK_UNIT="$ROOT/etc/systemd/system/callguard-link.service"
readonly RULE="$ROOT/etc/udev/rules.d/99-callguard-modem.rules"
readonly LINK="$ROOT/usr/local/bin/callguard"
readonly LOCK_COPY="$VENV/$LOCK_NAME"

if [ -n "$ROOT" ]; then
	printf 'TEST MODE: files go under %s; system commands are written to %s, not run.\n' "$ROOT" "$LOG"
elif [ "$(id -u)" -ne 0 ]; then
	die "the installer changes the system, so it must run as root: sudo $0 $ARGS"
fi

# ================================================================================================
uninstall() {
	STEP_TOTAL=3
	[ "$PURGE" -eq 1 ] && STEP_TOTAL=4

	step 1 "Stopping CallGuard"
	run systemctl disable --now callguard-web 2>/dev/null || run systemctl disable callguard-web 2>/dev/null || true
	run systemctl disable --now callguard-link 2>/dev/null || run systemctl disable callguard-link 2>/dev/null || true
	if ! run systemctl disable --now callguard; then
		# systemd not running (an image being prepared), or no such unit: still drop the links.
		run systemctl disable callguard 2>/dev/null ||
			say "(it was not running or not installed: carrying on)"
	fi

	step 2 "Removing the program, the service and the modem rule"
	rm -f -- "$UNIT" "$WEB_UNIT" "$LINK_UNIT" "$RULE"
	say "removed the service files $UNIT, $WEB_UNIT and $LINK_UNIT and the modem rule $RULE"
	rm -rf -- "$VENV"
	say "removed the program folder $VENV"
	if [ -L "$LINK" ] && [ "$(readlink -- "$LINK")" = "$VENV_REAL/bin/callguard" ]; then
		rm -f -- "$LINK"
		say "removed the command $LINK"
	fi
	if [ -n "$ROOT" ] || [ -d /run/systemd/system ]; then
		run systemctl daemon-reload || warn "systemd could not reload its service files"
		run systemctl reset-failed callguard 2>/dev/null || true
		run systemctl reset-failed callguard-web 2>/dev/null || true
		run systemctl reset-failed callguard-link 2>/dev/null || true
	fi
	run udevadm control --reload || warn "udev could not reload its rules; they are re-read at the next boot"

	if [ "$PURGE" -eq 1 ]; then
		step 3 "Removing the settings, the lists, the call log and the callguard user"
		rm -rf -- "$CONF_DIR" "$STATE_DIR"
		say "removed $CONF_DIR and $STATE_DIR"
		# Test mode without $ROOT/etc/passwd cannot know: write down what an installed unit needs.
		if have_user "$USER_NAME" || { [ -n "$ROOT" ] && [ ! -f "$ROOT/etc/passwd" ]; }; then
			run userdel "$USER_NAME" ||
				warn "the $USER_NAME user could not be removed (is a program still running as it?): sudo userdel $USER_NAME"
		else
			say "there is no $USER_NAME user to remove"
		fi
		if have_group "$USER_NAME"; then
			run groupdel "$USER_NAME" || warn "the $USER_NAME group could not be removed"
		fi
		say "The gpio group is left in place: other programs may use it."
		step 4 "Done"
		say "CallGuard has been removed completely."
	else
		step 3 "Done"
		say "CallGuard has been removed. These were kept, in case you install it again:"
		say "  the settings:                     $CONF_DIR"
		say "  the lists, the call log, status:  $STATE_DIR"
		say "To remove them and the callguard user too:  sudo ./install.sh --uninstall --purge"
	fi
}

# ================================================================================================
check_system() {
	step 1 "Checking this computer"

	local os_release="" id="" like="" version="" pretty="" f
	for f in "$ROOT/etc/os-release" /etc/os-release /usr/lib/os-release; do
		if [ -f "$f" ]; then
			os_release=$f
			break
		fi
	done
	if [ -n "$os_release" ]; then
		id=$(os_field "$os_release" ID)
		like=$(os_field "$os_release" ID_LIKE)
		version=$(os_field "$os_release" VERSION_ID)
		pretty=$(os_field "$os_release" PRETTY_NAME)
	fi
	case " $id $like " in
	*" debian "* | *" raspbian "*)
		case "$version" in
		12 | 13) say "System: ${pretty:-$id $version} (supported)." ;;
		*) warn "this is ${pretty:-$id ${version:-(no version)}}. CallGuard is made for Raspberry Pi OS Bookworm or Trixie (Debian 12 or 13); carrying on, but some steps may fail." ;;
		esac
		;;
	*) warn "this is ${pretty:-an unknown system}, not Raspberry Pi OS or Debian. CallGuard is made for Raspberry Pi OS Bookworm or Trixie (Debian 12 or 13); carrying on, but some steps may fail." ;;
	esac

	command -v python3 >/dev/null 2>&1 ||
		die "Python 3 is not installed. Install it with: sudo apt-get install python3  and run the installer again."
	local py
	py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
		die "python3 does not work on this computer (it could not print its version)."
	if ! printf '%s\n%s\n' "$MIN_PYTHON" "$py" | sort -C -V; then
		die "CallGuard needs Python $MIN_PYTHON or newer; this computer has Python $py. Use Raspberry Pi OS Bookworm or newer."
	fi
	say "Python $py (needs $MIN_PYTHON or newer): fine."
	for f in pyproject.toml "$LOCK_SRC" systemd/callguard.service systemd/callguard-web.service systemd/callguard-link.service systemd/99-callguard-modem.rules config/callguard.toml; do
		[ -f "$SOURCE/$f" ] || die "$SOURCE is not a complete CallGuard source folder: $f is missing (it needs pyproject.toml, $LOCK_SRC, systemd/ and config/). Run install.sh from the CallGuard folder, or give it with --source DIR."
	done
	say "Installing from $SOURCE."
}

LGPIO_FROM_APT=1

install_packages() {
	step 2 "Installing the system packages CallGuard needs (speech, sound, GPIO, Python)"
	say "Packages: $PACKAGES"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # PACKAGES is a list of words on purpose
	if run apt-get install -y --no-install-recommends $PACKAGES; then
		return
	fi
	say "That did not work the first time; refreshing the package lists and trying again."
	run apt-get update || warn "refreshing the package lists failed (is the network connected?)"
	# shellcheck disable=SC2086
	if run apt-get install -y --no-install-recommends $PACKAGES; then
		return
	fi
	# Plain Debian has no python3-lgpio (Raspberry Pi OS does): do without it rather than stop.
	if ! apt-cache show python3-lgpio >/dev/null 2>&1; then
		warn "python3-lgpio is not available here (plain Debian rather than Raspberry Pi OS). Installing the others; the lights and the button will try the lgpio package from PyPI instead."
		LGPIO_FROM_APT=0
		# shellcheck disable=SC2086
		run apt-get install -y --no-install-recommends ${PACKAGES/python3-lgpio/} && return
	fi
	die "the packages could not be installed. Check the network (ping deb.debian.org) and run the installer again."
}

create_user() {
	step 3 "Creating the '$USER_NAME' user that CallGuard runs as"
	if have_group gpio; then
		say "The gpio group exists."
	else
		say "There is no gpio group (plain Debian has none; Raspberry Pi OS does): creating it."
		run groupadd --system gpio
		if [ -z "$ROOT" ] && ! grep -rqs 'GROUP="gpio"' /usr/lib/udev/rules.d /etc/udev/rules.d; then
			warn "no udev rule gives the gpio group the GPIO chips (/dev/gpiochip*): on plain Debian the lights, the button and the line sensor stay root-only until one is added."
		fi
	fi
	if have_user "$USER_NAME"; then
		say "The $USER_NAME user exists; making sure it is in the groups $USER_GROUPS."
		run usermod --append --groups "$USER_GROUPS" "$USER_NAME"
	else
		run useradd --system --user-group --home-dir /var/lib/callguard --no-create-home \
			--shell /usr/sbin/nologin --comment "CallGuard call screening" \
			--groups "$USER_GROUPS" "$USER_NAME"
	fi
	say "It may use the modem (dialout), the GPIO pins (gpio) and the speaker (audio), and cannot log in."
}

# A clean copy of the source, so that building never writes into the volunteer's checkout.
STAGING=""
stage_source() {
	STAGING=$(mktemp -d "${TMPDIR:-/tmp}/callguard-install.XXXXXX")
	tar -C "$SOURCE" --exclude=./.git --exclude=./.venv --exclude=./build \
		--exclude='*.egg-info' --exclude=__pycache__ --exclude=./.pytest_cache \
		--exclude=./.hypothesis --exclude=./.mypy_cache --exclude=./.ruff_cache \
		-cf - . | tar -C "$STAGING" -xf -
}

# pip_install FROM RUNNER: the libraries in FROM's lock, then CallGuard from FROM, into the program
# folder; RUNNER is run (written down in test mode) or really.
# The libraries: exactly the lock's versions, each file checked against its sha256, wheels only
# (nothing is compiled on the Pi), reinstalled even when the system has the same version (so the
# program folder holds the checked files, not Raspberry Pi OS's python3-* copies). CallGuard:
# --no-deps (nothing unpinned), --no-build-isolation (built by the lock's setuptools, not by
# whatever PyPI has that day), --no-index (nothing more is downloaded).
pip_install() {
	local from=$1 runner=$2
	rm -f -- "$LOCK_COPY" # until the install succeeds, the lock of this folder is not known
	"$runner" "$VENV/bin/python" -I -m pip install --quiet --disable-pip-version-check \
		--require-hashes --only-binary :all: --force-reinstall -r "$from/$LOCK_SRC" ||
		die "the Python libraries CallGuard uses could not be installed from $LOCK_SRC (see pip's message above; the network is needed). A 'THESE PACKAGES DO NOT MATCH THE HASHES' message means a download was damaged or changed: run the installer again, and tell the CallGuard developers if it persists."
	"$runner" "$VENV/bin/python" -I -m pip install --quiet --disable-pip-version-check \
		--no-deps --no-build-isolation --no-index --upgrade "$from" ||
		die "the CallGuard program could not be installed (see pip's message above)."
	mkdir -p -- "$VENV"
	install -m 0644 -- "$from/$LOCK_SRC" "$LOCK_COPY.new"
	mv -f -- "$LOCK_COPY.new" "$LOCK_COPY"
}

install_code() {
	step 4 "Installing the CallGuard program in $VENV"
	if [ -n "$ROOT" ] && [ "${CALLGUARD_INSTALL_VENV:-0}" != 1 ]; then
		run python3 -m venv --system-site-packages "$VENV"
		pip_install "$SOURCE" run
		say "(set CALLGUARD_INSTALL_VENV=1 to really build the program folder in test mode)"
		return
	fi

	local want have=""
	want=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	if [ -x "$VENV/bin/python" ]; then
		have=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || have=broken
	fi
	if [ -n "$have" ] && [ "$have" != "$want" ]; then
		say "The program folder was made for Python $have, and this system now has Python $want: rebuilding it."
		rm -rf -- "$VENV"
		have=""
	elif [ -n "$have" ] && ! grep -qs '^include-system-site-packages = true' "$VENV/pyvenv.cfg"; then
		say "The program folder cannot see the system's python3-lgpio: rebuilding it."
		rm -rf -- "$VENV"
		have=""
	fi
	if [ -z "$have" ]; then
		say "Creating the program folder (a Python virtual environment that can see python3-lgpio)."
		python3 -m venv --system-site-packages "$VENV"
	else
		say "The program folder exists: upgrading it in place."
	fi

	say "Installing CallGuard and the Python libraries it uses, the versions in $LOCK_SRC (a few minutes on a Pi Zero)."
	stage_source
	pip_install "$STAGING" really
	if [ "$LGPIO_FROM_APT" -eq 0 ]; then
		"$VENV/bin/python" -I -m pip install --quiet --disable-pip-version-check lgpio ||
			warn "lgpio could not be installed from PyPI: the lights, the button and the GPIO line sensor will not work."
	fi
	[ -x "$VENV/bin/callguard" ] || die "$VENV/bin/callguard is missing after the install."

	# Every file shipped in callguard/data (prompts, the protected numbers) must have been installed.
	local missing
	missing=$("$VENV/bin/python" -I - "$STAGING/callguard/data" <<'EOF'
import sys
from importlib import resources
from pathlib import Path

shipped = {p.name for p in Path(sys.argv[1]).iterdir() if p.is_file()}
installed = {p.name for p in (resources.files("callguard") / "data").iterdir()}
print(" ".join(sorted(shipped - installed)))
EOF
	) || missing="(could not check)"
	if [ -n "$missing" ]; then
		warn "these files of callguard/data were not installed: $missing. The package is incomplete (pyproject.toml [tool.setuptools.package-data] must list them); tell the CallGuard developers."
	fi
	rm -rf -- "$STAGING"
	STAGING=""

	if [ -e "$LINK" ] && ! [ -L "$LINK" ]; then
		warn "$LINK exists and is not CallGuard's: left alone. Use $VENV_REAL/bin/callguard instead."
	else
		mkdir -p -- "$(dirname -- "$LINK")"
		ln -sfn -- "$VENV_REAL/bin/callguard" "$LINK"
	fi
	say "Installed: $("$VENV/bin/python" -I -c 'from callguard.version import version_line; print(version_line())' 2>/dev/null)"
	say "The 'callguard' command is $VENV_REAL/bin/callguard (also as $LINK)."
}

install_config() {
	step 5 "Putting the settings file in $CONF_DIR"
	local shipped="$SOURCE/config/callguard.toml"
	mkdir -p -- "$CONF_DIR"
	chmod 0775 -- "$CONF_DIR"
	run chown "root:$USER_NAME" "$CONF_DIR"
	if [ ! -e "$CONF" ]; then
		install -m 0640 -- "$shipped" "$CONF"
		say "Copied the example settings (they are the defaults) to $CONF."
	elif cmp -s -- "$shipped" "$CONF"; then
		say "$CONF is already the same as this version's example: nothing to do."
		if [ -e "$CONF.new" ]; then
			rm -f -- "$CONF.new"
			say "Removed the old $CONF.new, which is no longer needed."
		fi
	else
		install -m 0640 -- "$shipped" "$CONF.new"
		say "Your settings in $CONF are KEPT as they are."
		say "This version's example settings differ from them, so they were put beside it as"
		say "  $CONF.new"
		say "Compare the two with:  diff $CONF $CONF.new"
		run chown "root:$USER_NAME" "$CONF.new"
	fi
	chmod 0660 -- "$CONF"
	run chown "root:$USER_NAME" "$CONF"
	say "Root and the family page's Settings can change it (mode 0660, group $USER_NAME)."
	if [ -x "$VENV/bin/callguard" ]; then
		local report
		if report=$("$VENV/bin/callguard" --config "$CONF" config check 2>&1 >/dev/null); then
			say "The settings are valid (callguard config check)."
		else
			printf '%s\n' "$report" >&2
			warn "CallGuard does not accept the settings in $CONF (see above): fix them, then run: sudo systemctl restart callguard"
		fi
	fi
}

install_state() {
	step 6 "Preparing $STATE_DIR for the lists and the call log"
	local existed=0
	[ -d "$STATE_DIR" ] && existed=1
	mkdir -p -- "$STATE_DIR"
	chmod 0750 -- "$STATE_DIR"
	run chown -R "$USER_NAME:$USER_NAME" "$STATE_DIR"
	if [ "$existed" -eq 1 ]; then
		say "It already exists: the lists and the call log in it are kept."
	fi
	say "Only the $USER_NAME user can read and change it (mode 0750)."
}

install_service() {
	step 7 "Setting CallGuard to start by itself, and naming the modem"
	mkdir -p -- "$(dirname -- "$UNIT")" "$(dirname -- "$RULE")"
	install -m 0644 -- "$SOURCE/systemd/callguard.service" "$UNIT"
	say "Service file: $UNIT"
	install -m 0644 -- "$SOURCE/systemd/callguard-web.service" "$WEB_UNIT"
	say "Family page service file: $WEB_UNIT"
	install -m 0644 -- "$SOURCE/systemd/callguard-link.service" "$LINK_UNIT"
	say "Carer alerts service file: $LINK_UNIT"
	install -m 0644 -- "$SOURCE/systemd/99-callguard-modem.rules" "$RULE"
	say "Modem rule: $RULE (a known USB modem appears as /dev/callguard-modem)"
	if run udevadm control --reload; then
		run udevadm trigger --subsystem-match=tty --subsystem-match=usb ||
			warn "udev could not re-check the plugged-in devices: unplug the modem and plug it back in."
	else
		warn "udev is not running here; the modem rule takes effect at the next boot."
	fi

	local systemd_up=1
	if [ -z "$ROOT" ] && [ ! -d /run/systemd/system ]; then
		systemd_up=0
		say "systemd is not running here (an SD card image being prepared?): CallGuard starts at the next boot."
	fi
	if [ "$systemd_up" -eq 1 ]; then
		run systemctl daemon-reload
	fi
	run systemctl enable callguard
	run systemctl enable callguard-web
	run systemctl enable callguard-link
	say "CallGuard, its family page and its carer alerts will start by themselves every time the Pi starts."
	SERVICE_STARTED=0
	if [ "$START" -eq 0 ]; then
		say "Not starting it now (--no-start). Start it with: sudo systemctl restart callguard"
		say "(if an older CallGuard is running, it keeps running the old version until then)"
	elif [ "$systemd_up" -eq 1 ]; then
		say "Starting CallGuard now (restarting it, if it was already running; up to a minute)."
		if run systemctl restart callguard; then
			SERVICE_STARTED=1
		else
			SERVICE_STARTED=-1
		fi
		# The family page is secondary: if it does not start, screening still runs.
		run systemctl restart callguard-web ||
			warn "the family page did not start (screening is not affected): systemctl status callguard-web"
		run systemctl restart callguard-link ||
			warn "the carer alerts did not start (screening is not affected): systemctl status callguard-link"
	fi
}

next_steps() {
	step 8 "Done"
	if [ "$SERVICE_STARTED" -eq -1 ]; then
		printf '\nCallGuard is installed, but it did not start. To see why:\n' >&2
		printf '    systemctl status callguard\n    journalctl -u callguard -n 30\n' >&2
		printf 'Fix what it says, then:  sudo systemctl restart callguard\n' >&2
		exit 1
	fi
	if [ "$SERVICE_STARTED" -eq 1 ]; then
		say "CallGuard is installed and running."
	else
		say "CallGuard is installed."
	fi
	cat <<EOF

Next:
  1. Set it up for this resident (family numbers, bank card numbers, the voice, quiet hours,
     the family page's password; or set that alone with: sudo callguard web password):
       sudo $VENV_REAL/bin/callguard setup
  2. Check the modem, the lights, the button and the speaker you have fitted
     (the service holds the modem, so stop it for the test):
       sudo systemctl stop callguard
       sudo -u callguard $VENV_REAL/bin/callguard selftest
       sudo systemctl start callguard
  3. Check that CallGuard is running (modem connected, line idle):
       sudo callguard status

  Settings:             /etc/callguard/callguard.toml  (then: sudo systemctl reload callguard)
  Lists and call log:   /var/lib/callguard
  What it is doing:     journalctl -u callguard -f
EOF
}

# ================================================================================================
if [ "$UNINSTALL" -eq 1 ]; then
	uninstall
	exit 0
fi

SERVICE_STARTED=0
check_system
install_packages
create_user
install_code
install_config
install_state
install_service
next_steps
