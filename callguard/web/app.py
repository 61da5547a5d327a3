"""The family page's Flask app: the pages, the login, the session and the CSRF token.

Theory of operation
-------------------
Every request passes :func:`create_app`'s gatekeeper before any page sees it:

1. With no password set (``callguard web password`` has never run) every address answers the
   page that says how to set one, with status 503; nothing else is served (the style sheet
   apart).
2. The session is Flask's signed cookie (``HttpOnly``, ``SameSite=Strict``, 30 days), signed
   with the key in ``web-secret-key``. It holds a fingerprint of the stored password: setting a
   new password ends every session. Without a session, a GET is sent to the login page and
   anything else gets 401; nothing runs.
3. Every POST, the login's included, must carry the session's CSRF token (a hidden field of
   every form) and come from the page's own origin (:func:`~callguard.web.guard.same_origin`);
   otherwise 403 and nothing changes.

Wrong passwords are slowed and counted per client by a
:class:`~callguard.web.guard.LoginThrottle`; the client address is whatever ``REMOTE_ADDR``
says, which :class:`~callguard.web.guard.NetworkGuard` (outside this app, see
:mod:`callguard.web.server`) has already checked against ``web.allow_networks``.

The pages read and write only through the store, as the CLI does (same checks, same locks, same
messages): :class:`~callguard.store.lists.Store` is made afresh for each request, so no state
is shared between waitress's threads. The screening daemon is never asked anything: it sees the
changed list and alert files by itself.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from flask import (
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response as BaseResponse

from callguard.config import Config
from callguard.core.lists import LIST_TITLES, target_for
from callguard.core.numbers import for_people
from callguard.errors import CallGuardError, UsageError
from callguard.store.folder import now_local
from callguard.store.jsonfile import Recovery
from callguard.store.lists import Store
from callguard.store.state import alert_calls
from callguard.texts import shown
from callguard.web import pages
from callguard.web import settings as settings_page
from callguard.web.guard import (
    FAILURE_DELAY_S,
    SECURITY_HEADERS,
    LoginThrottle,
    client_address,
    client_key,
    same_origin,
)
from callguard.web.passwords import PasswordError, PasswordFile, fingerprint, verify_password
from callguard.web.uploads import MAX_UPLOAD_BYTES, Uploads

log = logging.getLogger(__name__)

SESSION_DAYS: Final = 30
LATEST_CALLS: Final = 10
"""Calls on the Today page."""
PAGE_CALLS: Final = 25
"""Calls on a page of the Calls page."""
MAX_PAGE: Final = 4000
OUTBOX_ALERTS: Final = 100
"""Alerts on the Alerts page, newest first."""
SEARCH_SCAN: Final = 5000
"""A search by name (or part of a number) looks through this many of the newest calls."""

Reply = BaseResponse | str | tuple[str, int] | tuple[str, int, dict[str, str]]


def create_app(
    config: Config,
    *,
    throttle: LoginThrottle | None = None,
    failure_delay_s: float = FAILURE_DELAY_S,
    clock: Callable[[], dt.datetime] = now_local,
) -> Flask:
    """The family page for ``config`` (its storage folder, region and call log)."""
    from callguard.web.passwords import secret_key

    folder = config.storage.dir
    region = config.screening.region
    app = Flask(__name__)
    app.secret_key = secret_key(folder)
    app.config.update(
        SESSION_COOKIE_NAME="callguard_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=SESSION_DAYS),
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
    )
    password_file = PasswordFile(folder)
    uploads = Uploads(folder)
    path_of_config = settings_page.config_path(config)
    settings_lock = threading.Lock()
    throttle = throttle or LoginThrottle()
    one_check_at_a_time = threading.Lock()  # scrypt takes 16 MiB: never four at once

    def open_store() -> Store:
        return Store(
            folder,
            region=region,
            retention_days=config.storage.log_retention_days,
            runtime_dir=config.storage.runtime_dir,
            clock=clock,
            on_recovery=_log_recovery,
        )

    def csrf_token() -> str:
        token = session.get("csrf")
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(32)
            session["csrf"] = token
        return token

    def client() -> str:
        address = client_address(request.environ)
        return str(address) if address else str(request.remote_addr)

    def by() -> str:
        return f"family page ({client()})"

    app.jinja_env.filters["form_text"] = settings_page.form_text
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        list_titles=LIST_TITLES,
        list_headings=pages.LIST_HEADINGS,
        list_intros=pages.LIST_INTROS,
        force_label=pages.FORCE_LABEL,
        force_many_label=pages.FORCE_MANY_LABEL,
    )

    # -- the gatekeeper ---------------------------------------------------------------------

    def forbidden_post() -> str | None:
        """Why a state-changing request is refused (CSRF), or None."""
        origin = request.headers.get("Origin")
        referer = request.headers.get("Referer")
        if not same_origin(request.host_url, origin, referer):
            return f"it did not come from this page (Origin {origin!r}, Referer {referer!r})"
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(
            sent.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
        ):
            return "its form token was missing or wrong"
        return None

    @app.before_request
    def gatekeeper() -> Reply | None:
        g.logged_in = False
        if request.endpoint == "static":
            return None
        line = password_file.read()
        if line is None:
            return render_template("no_password.html"), 503
        g.password_line = line
        g.logged_in = session.get("pw") == fingerprint(line)
        if request.endpoint != "login" and not g.logged_in:
            if request.method in ("GET", "HEAD"):
                return redirect(url_for("login", next=_here()))
            return _message(
                "Please log in",
                "You are not logged in (or your session has ended), so nothing was changed.",
                401,
                link=url_for("login"),
            )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if request.endpoint == "import_upload":  # the one request that carries a file
                request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024
            why = forbidden_post()
            if why is not None:
                log.warning(
                    "refused a %s to %s from %s: %s", request.method, request.path, client(), why
                )
                return _message(
                    "That form is out of date",
                    "Nothing was changed. Go back, reload the page, and try again.",
                    403,
                )
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Reply:
        code = exc.code or 500
        if code == 413 and request.endpoint == "import_upload":
            return _message(
                "That file is too big",
                f"CallGuard takes contacts files of up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, "
                "and a phone's whole address book is far less. Check that it is the right file "
                "(a contacts export, as CSV or vCard), or export fewer contacts. Nothing was "
                "added.",
                413,
                back=url_for("import_page"),
            )
        titles = {404: "There is no such page", 405: "That cannot be done here"}
        return _message(titles.get(code, exc.name), exc.description or "", code)

    @app.errorhandler(CallGuardError)
    def store_error(exc: CallGuardError) -> Reply:
        log.error("%s %s: %s", request.method, request.path, exc)
        return _message("CallGuard could not do that", shown(exc, lines=True), 503)

    # -- logging in -------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Reply:
        next_path = _safe_next(request.values.get("next"))
        if request.method != "POST":
            if g.logged_in:
                return redirect(next_path)
            return render_template("login.html", next=next_path), 200
        address = client()
        key = client_key(client_address(request.environ))
        wait_s = throttle.refused_for_s(key)
        if wait_s:
            log.warning("refused a login from %s: too many wrong passwords", address)
            return _locked_out(wait_s, next_path)
        password = request.form.get("password", "")
        try:
            with one_check_at_a_time:
                right = verify_password(password, g.password_line)
        except PasswordError as exc:
            log.error("%s: %s", password_file.path, exc)
            return _message(
                "The password cannot be checked",
                f"{exc}. Set it again on the Pi: sudo callguard web password",
                503,
            )
        if not right:
            count = throttle.failed(key)
            log.warning(
                "wrong password on the family page from %s (%d in the last %d minutes)",
                address,
                count,
                throttle.window_s // 60,
            )
            time.sleep(failure_delay_s)
            wait_s = throttle.refused_for_s(key)
            if wait_s:
                log.warning(
                    "refusing logins from %s for %d minutes: too many wrong passwords",
                    address,
                    round(wait_s / 60),
                )
                return _locked_out(wait_s, next_path)
            return render_template(
                "login.html", next=next_path, error="That is not the password. Try again."
            ), 401
        throttle.succeeded(key)
        session.clear()
        session.permanent = True
        session["pw"] = fingerprint(g.password_line)
        session["csrf"] = secrets.token_urlsafe(32)
        log.info("logged in to the family page from %s", address)
        return redirect(next_path)

    def _locked_out(wait_s: float, next_path: str) -> Reply:
        minutes = max(1, round(wait_s / 60))
        page = render_template(
            "login.html",
            next=next_path,
            error=(
                "Too many wrong passwords from this device. Logging in is turned off here for "
                f"{minutes} minute{'s' if minutes != 1 else ''}; try again after that."
            ),
        )
        return page, 429, {"Retry-After": str(int(wait_s) + 1)}

    @app.post("/logout")
    def logout() -> Reply:
        session.clear()
        flash("You have logged out.")
        return redirect(url_for("login"))

    # -- Today ------------------------------------------------------------------------------

    def render_today(ack_by: str | None = None, ack_error: str = "", status: int = 200) -> Reply:
        store = open_store()
        now = clock()
        problems: list[str] = []
        health = pages.health(_tried(store.read_status, None, problems))
        alert = _tried(store.read_alert, None, problems)
        active = bool(alert and alert.get("active"))
        alerting = pages.alert_rows(alert_calls(alert) if active else [], now.date())
        calls = pages.call_rows(
            _tried(lambda: store.calls(limit=LATEST_CALLS), [], problems), now.date()
        )
        remembered = session.get("ack_by")
        return render_template(
            "today.html",
            page="today",
            health=health,
            alert_active=active,
            alerting=alerting,
            calls=calls,
            problems=problems,
            ack_by=ack_by if ack_by is not None else (remembered or ""),
            ack_error=ack_error,
            max_name=pages.MAX_ACK_NAME,
        ), status

    @app.get("/")
    def today() -> Reply:
        return render_today()

    @app.post("/ack")
    def ack() -> Reply:
        typed = request.form.get("by", "")[: pages.MAX_ACK_NAME * 4]
        name, problem = pages.ack_name(typed)
        if problem:
            return render_today(ack_by=shown(typed), ack_error=problem, status=400)
        alert = open_store().ack_alert(by=name or by())
        if name:
            session["ack_by"] = name
        if alert is None:
            flash("There was no alert to clear.")
        else:
            log.info(
                "grooming alert acknowledged on the family page from %s%s",
                client(),
                f" by {name!r}" if name else "",
            )
            flash(
                "The alert is cleared and the light is off. If you have not yet, please ask "
                "about the call: who was it, and what did they want?"
            )
        return redirect(url_for("today"))

    # -- Lists ------------------------------------------------------------------------------

    def render_lists(
        errors: dict[str, str] | None = None, values: dict[str, dict[str, str]] | None = None
    ) -> str:
        store = open_store()
        lists = store.all_entries()
        now = clock()
        return render_template(
            "lists.html",
            page="lists",
            lists={n: pages.entry_rows(lists[n], region, now) for n in pages.LISTS},
            errors=errors or {},
            values=values or {},
        )

    @app.get("/lists")
    def lists() -> Reply:
        return render_lists()

    @app.post("/lists/<list_name>/add")
    def list_add(list_name: str) -> Reply:
        if list_name not in pages.LISTS:
            abort(404)
        form = {k: request.form.get(k, "") for k in ("number", "name", "note")}
        form = {k: v.strip() for k, v in form.items()}
        try:
            target = target_for(form["number"], region)
            result = open_store().add(
                list_name,
                target,
                name=form["name"],
                note=form["note"],
                by=by(),
                force=bool(request.form.get("force")),
            )
        except UsageError as exc:
            problem = pages.for_the_page(shown(exc, lines=True))
            return render_lists({list_name: problem}, {list_name: form}), 400
        title = LIST_TITLES[list_name]
        label = f" as '{shown(result.entry.name)}'" if result.entry.name else ""
        verb = "Updated" if result.updated else "Added"
        where = "on" if result.updated else "to"
        moved = "".join(
            f" It was on the {LIST_TITLES[other]}; it has been taken off."
            for other in result.moved_from
        )
        flash(f"{verb} {shown(target.describe())} {where} the {title}{label}.{moved}")
        return redirect(url_for("lists") + f"#{list_name}")

    @app.post("/lists/<list_name>/remove")
    def list_remove(list_name: str) -> Reply:
        if list_name not in pages.LISTS:
            abort(404)
        try:
            target = target_for(request.form.get("number", ""), region)
            entry = open_store().remove(list_name, target)
        except UsageError as exc:
            return render_lists({list_name: pages.for_the_page(shown(exc, lines=True))}), 400
        label = f" ({shown(entry.name)})" if entry.name else ""
        flash(f"Removed {shown(target.describe())}{label} from the {LIST_TITLES[list_name]}.")
        return redirect(url_for("lists") + f"#{list_name}")

    # -- Calls ------------------------------------------------------------------------------

    @app.get("/calls")
    def calls() -> Reply:
        query = request.args.get("q", "").strip()[:100]
        try:
            page_no = min(MAX_PAGE, max(1, int(request.args.get("page", "1"))))
        except ValueError:
            page_no = 1
        store = open_store()
        today_date = clock().date()
        note = ""
        if query:
            found, note = _search(store, query, region)
            rows = pages.call_rows(found, today_date)
            start = (page_no - 1) * PAGE_CALLS
            shown_rows = rows[start : start + PAGE_CALLS]
            more = len(rows) > start + PAGE_CALLS
        else:
            newest = store.calls(limit=page_no * PAGE_CALLS + 1)
            more = len(newest) > page_no * PAGE_CALLS
            rows = pages.call_rows(newest, today_date)
            shown_rows = rows[(page_no - 1) * PAGE_CALLS : page_no * PAGE_CALLS]
        return render_template(
            "calls.html",
            page="calls",
            calls=shown_rows,
            query=query,
            page_no=page_no,
            more=more,
            note=note,
        )

    @app.post("/calls/<list_name>")
    def call_to_list(list_name: str) -> Reply:
        if list_name not in ("allow", "block"):
            abort(404)
        back = _safe_next(request.form.get("back"), default=url_for("calls"))
        number = request.form.get("number", "")
        name = request.form.get("name", "").strip()[:60]
        try:
            target = target_for(number, region)
            result = open_store().add(
                list_name, target, name=name, note="added from the Calls page", by=by()
            )
        except UsageError as exc:
            flash(pages.for_the_page(shown(exc, lines=True)), "error")
            return redirect(back)
        verb = (
            "is on the allow list: it will ring through"
            if list_name == "allow"
            else ("is on the block list: it will not ring again")
        )
        already = " (it was already)" if result.updated else ""
        flash(f"{shown(target.describe())} {verb}{already}.")
        return redirect(back)

    # -- Import -----------------------------------------------------------------------------

    def session_key() -> str:
        return csrf_token()

    def render_import(error: str = "", status: int = 200) -> Reply:
        return render_template(
            "import.html",
            page="import",
            error=error,
            max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
        ), status

    def render_preview(
        held: Any, error: str = "", status: int = 200, force_offered: bool = False
    ) -> Reply:
        from callguard.store.contacts import preview_data

        try:
            preview = preview_data(held.data, region, source=held.filename)
        except UsageError as exc:
            uploads.drop(held.token)
            return render_import(pages.for_the_page(shown(exc, lines=True)), 400)
        return render_template(
            "import_preview.html",
            page="import",
            held=held,
            list_title=LIST_TITLES[held.list_name],
            how=shown(preview.how),
            items=[
                (item.line, shown(item.name), shown(for_people(item.target.number, region)))
                for item in preview.items
            ],
            problems=[(line, shown(message)) for line, message in preview.problems],
            notes=[(line, shown(message)) for line, message in preview.notes],
            error=error,
            force_offered=force_offered,
        ), status

    @app.get("/import")
    def import_page() -> Reply:
        return render_import()

    @app.post("/import")
    def import_upload() -> Reply:
        upload = request.files.get("file")
        list_name = request.form.get("list", "")
        if list_name not in ("allow", "block"):
            return render_import("Choose the list to add the numbers to: allow or block.", 400)
        if upload is None or not upload.filename:
            return render_import("Choose a contacts file first (CSV or vCard).", 400)
        data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            abort(413)
        filename = _file_name(upload.filename)
        held = uploads.hold(data, filename, list_name, session_key())
        log.info(
            "contacts file %r (%d bytes) sent to the family page from %s for the %s",
            filename,
            len(data),
            client(),
            LIST_TITLES[list_name],
        )
        return render_preview(held)

    @app.post("/import/confirm")
    def import_confirm() -> Reply:
        from callguard.store.contacts import preview_data

        held = uploads.get(request.form.get("token", ""), session_key())
        if held is None:
            return render_import(
                "That preview has run out (a file is kept for an hour) or was already added. "
                "Nothing was added. Choose the file again.",
                409,
            )
        try:
            preview = preview_data(held.data, region, source=held.filename)
        except UsageError as exc:
            uploads.drop(held.token)
            return render_import(pages.for_the_page(shown(exc, lines=True)), 400)
        if not preview.items:
            uploads.drop(held.token)
            return render_import(f"{shown(held.filename)} has no numbers to add.", 400)
        force = bool(request.form.get("force"))
        try:
            added, updated = open_store().add_many(
                held.list_name, preview.items, by=by(), force=force
            )
        except UsageError as exc:
            message = shown(exc, lines=True).replace(
                "add --force to move them", f"tick '{pages.FORCE_MANY_LABEL}' to move them"
            )
            return render_preview(
                held, pages.for_the_page(message), 409, force_offered="--force" in str(exc)
            )
        uploads.drop(held.token)
        skipped = (
            f" {len(preview.problems)} line(s) it could not read were left out."
            if preview.problems
            else ""
        )
        log.info(
            "imported %r into the %s from %s: %d added, %d updated",
            held.filename,
            LIST_TITLES[held.list_name],
            client(),
            added,
            updated,
        )
        flash(
            f"Added {shown(held.filename)} to the {LIST_TITLES[held.list_name]}: {added} new, "
            f"{updated} already there (updated).{skipped}"
        )
        return redirect(url_for("lists") + f"#{held.list_name}")

    # -- Alerts -------------------------------------------------------------------------------

    @app.get("/alerts")
    def alerts() -> Reply:
        now_config, _ = settings_page.current(path_of_config, config)
        rows: list[pages.OutboxRow] = []
        problem = ""
        sent_any = False
        try:
            from callguard.store.outbox import OUTBOX_FILE, Outbox

            # Reading creates nothing; the web process never makes the link's outbox.
            if os.path.lexists(os.path.join(folder, OUTBOX_FILE)):
                outbox = Outbox(folder, clock=clock)
                try:
                    found = outbox.alerts(limit=OUTBOX_ALERTS)
                finally:
                    outbox.close()
                rows = pages.outbox_rows(found, clock().date())
                sent_any = bool(rows)
        except (CallGuardError, ImportError, OSError, sqlite3.Error) as exc:
            log.error("the family page could not read the alert outbox: %s", exc)
            problem = (
                "The list of alerts cannot be read just now, so it is not shown. Calls are "
                "still screened. A volunteer can look on the Pi with: sudo callguard alerts "
                f"list (it said: {pages.for_the_page(shown(exc, lines=True))})"
            )
        return render_template(
            "alerts.html",
            page="alerts",
            alerts=rows,
            sent_any=sent_any,
            problem=problem,
            channels=[pages.channel_label(url) for url in now_config.alerts.urls],
            config_file=shown(str(path_of_config or settings_page.DEFAULT_CONFIG)),
            limit=OUTBOX_ALERTS,
        )

    # -- Settings -----------------------------------------------------------------------------

    def render_settings(
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        problems: list[str] | None = None,
        status: int = 200,
    ) -> Reply:
        now_config, problem = settings_page.current(path_of_config, config)
        shown_problems = list(problems or [])
        if problem and not shown_problems:
            shown_problems.append(problem)
        return render_template(
            "settings.html",
            page="settings",
            values=values or settings_page.values_of(now_config),
            errors=errors or {},
            problems=[pages.for_the_page(shown(p, lines=True)) for p in shown_problems],
            modes=settings_page.MODES,
            path=shown(str(path_of_config)) if path_of_config else "",
            channels=[pages.channel_label(url) for url in now_config.alerts.urls],
            heartbeat_host=pages.host_of(now_config.alerts.heartbeat_url),
            config_file=shown(str(path_of_config or settings_page.DEFAULT_CONFIG)),
        ), status

    @app.get("/settings")
    def settings() -> Reply:
        return render_settings()

    @app.post("/settings")
    def settings_save() -> Reply:
        new = settings_page.from_form(request.form)
        if path_of_config is None:
            return render_settings(
                new,
                problems=[
                    "CallGuard was started without a config file, so there is nowhere to save "
                    "settings. Nothing was saved. A volunteer can write one on the Pi (sudo "
                    "callguard setup) and restart the family page."
                ],
                status=409,
            )
        with settings_lock:
            try:
                text = settings_page.read_text(path_of_config)
                old_config, problem = settings_page.current(path_of_config, config)
                if problem:
                    return render_settings(new, problems=[problem], status=409)
                outcome = settings_page.edit(
                    text, str(path_of_config), settings_page.values_of(old_config), new
                )
                if outcome.errors or outcome.general:
                    return render_settings(new, outcome.errors, outcome.general, 400)
                if outcome.text is None:
                    flash("Nothing was changed.")
                    return redirect(url_for("settings"))
                settings_page.write(path_of_config, outcome.text)
            except settings_page.NotWritable as exc:
                log.error("settings not saved: %s", exc)
                return render_settings(new, problems=[str(exc)], status=409)
            except (OSError, UnicodeDecodeError, settings_page.UnreadableFile) as exc:
                log.error("settings not saved: cannot read %s: %s", path_of_config, exc)
                return render_settings(
                    new,
                    problems=[
                        f"The config file {path_of_config} cannot be read ({exc}). Nothing "
                        "was saved."
                    ],
                    status=409,
                )
        log.info(
            "settings changed on the family page from %s: %s",
            client(),
            ", ".join(outcome.changed),
        )
        flash("Saved. CallGuard uses the new settings within a few seconds.")
        return redirect(url_for("settings"))

    return app


# -- helpers --------------------------------------------------------------------------------


def _log_recovery(recovery: Recovery) -> None:
    log.warning("%s", recovery.message())


def _tried(read: Callable[[], Any], default: Any, problems: list[str]) -> Any:
    """``read()``, or ``default`` with the reason added to ``problems`` (a damaged file must not
    hide the rest of the page)."""
    try:
        return read()
    except CallGuardError as exc:
        log.error("the family page could not read the store: %s", exc)
        problems.append(shown(exc, lines=True))
        return default


def _here() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _safe_next(target: str | None, default: str = "/") -> str:
    """A path on this page to go to after logging in; anything else (another site) is "/"."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(c in target for c in "\r\n\\")
    ):
        return default
    return target


def _message(
    title: str, text: str, status: int, *, link: str | None = None, back: str | None = None
) -> Reply:
    return render_template("message.html", title=title, text=text, link=link, back=back), status


def _file_name(name: str) -> str:
    """A sent file's name as messages show it: its last part, one line, at most 80 characters."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = " ".join(shown(last).split())[:80]
    return cleaned or "the file"


def _search(store: Store, query: str, region: str) -> tuple[list[dict[str, Any]], str]:
    """Calls matching ``query``, oldest first: a whole number through the log's index, anything
    else (a name, part of a number) among the newest :data:`SEARCH_SCAN` calls."""
    from callguard.core.numbers import NumberError

    try:
        target = target_for(query, region)
    except NumberError:
        target = None
    if target is not None and target.kind != "prefix":
        return store.log.read_by_number(target.number, limit=MAX_PAGE), ""
    newest = store.calls(limit=SEARCH_SCAN)
    words = query.casefold()
    digits = "".join(c for c in query if c.isdigit())
    found = [
        c
        for c in newest
        if words in str(c.get("name") or "").casefold()
        or words in str(c.get("display") or "").casefold()
        or (digits and digits in "".join(ch for ch in str(c.get("display") or "") if ch.isdigit()))
        or (digits and digits in str(c.get("number") or ""))
    ]
    note = (
        f"Searched the newest {SEARCH_SCAN:,} calls; type a whole number to search them all."
        if len(newest) == SEARCH_SCAN
        else ""
    )
    return found, note
