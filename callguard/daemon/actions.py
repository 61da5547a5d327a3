"""The action runner: carries out what the call machine decides (seize, release, warn, speak on
the line, raise the grooming alert, remind, log, re-assert caller ID), on the main loop.

Theory of operation
-------------------
Off-hook is a state the runner owns. Every ``Seize`` sets it; only a modem that confirms
``ATH0`` (or a re-initialisation, which says ``ATH0`` first) clears it. A release that is not
confirmed is retried on a timer (:data:`ON_HOOK_RETRY_S`, doubling to :data:`ON_HOOK_RETRY_MAX_S`)
for as long as it takes, and after every :data:`REINIT_AFTER_FAILURES` failures the transport is
asked to reconnect and re-initialise. The status shows the line in a call while it is held.

Call records and the grooming alert are handed to the :class:`~callguard.daemon.writer.Writer`,
which writes them on its own thread (a record that cannot be written is kept until the card
takes it): nothing here waits for the SD card. A call's record is handed over
:data:`SETTLE_S` after the call ends (:meth:`ActionRunner.hand_over_if_due`), not at once: the
next caller ID is likeliest just then (a blocked caller redials the moment the line is put
down), and the writer's work (building the row, SQLite) would hold the interpreter while it
is screened.

The grooming alert lives in the alert file, so ``callguard ack`` (another process) can clear
it: the runner follows the file's signature and keeps the alert light in step.

Slow work never runs here: the line warning plays on its own thread, the room warning on the
speaker's, and caller ID is re-asserted after a call on its own thread (a deaf modem takes
seconds to time out, and the next caller ID must be screened at once).

While the line warning plays, CallGuard itself holds the line: the modem off-hook looks exactly
like a lifted phone, so line sensing is paused and cannot see the resident put theirs down.
The thread reports the time it held the line (:class:`~callguard.core.call.LineHeld`) through
``on_line_held`` before sensing resumes, so the call machine has it before any on-hook seen
after it, and logs a call that ended then as "at most" rather than counting the modem's time
as the resident's conversation. The daemon passes it to the loop's queue.

That re-assertion must never hold up a seizure: a seizure that finds it under way waits for
its replies (the modem takes one command line at a time). So it starts :data:`SETTLE_S` after
the call, with the line idle (a call that comes first puts it off until that call's end; its
caller ID shows caller ID is on), and gives way to a call that comes in once started: it sends
no further command, so a seizure waits for one command in flight at most.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from callguard.audio.prompts import Prompts
from callguard.audio.speaker import RoomSpeaker
from callguard.config import Config
from callguard.core.call import (
    AfterCall,
    CallAction,
    CallBackReminder,
    GroomingAlert,
    LineHeld,
    LineState,
    LogCall,
    Release,
    Screened,
    Seize,
    SpeakOnLine,
    Warn,
)
from callguard.core.record import CallRecord
from callguard.daemon.status import StatusBoard
from callguard.daemon.writer import Writer
from callguard.hardware import linesense
from callguard.hardware.indicators import Indicators
from callguard.modem.transport import ModemError, ModemTransport
from callguard.modem.voice import PlaybackResult, VoicePlayer
from callguard.store.files import Signature, file_signature
from callguard.store.lists import Store
from callguard.texts import shown

log = logging.getLogger(__name__)

SETTLE_S = 0.05
"""How long the work a change leaves that can wait (the call's record for the writer, the
status, re-asserting caller ID after a call) waits after it, so that it is not done just when
the next caller ID is likeliest: a blocked caller redials the moment the line is put down."""
ON_HOOK_RETRY_S = 1.0
ON_HOOK_RETRY_MAX_S = 5.0
REINIT_AFTER_FAILURES = 2

Observe = Callable[[str, Any], None]


class ActionRunner:
    """Carries out call actions. ``transport`` and ``line_sense`` are set when the daemon starts."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store,
        prompts: Prompts,
        speaker: RoomSpeaker,
        board: StatusBoard,
        writer: Writer,
        observe: Observe,
        monotonic: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.prompts = prompts
        self.speaker = speaker
        self.board = board
        self.writer = writer
        self.observe = observe
        self.monotonic = monotonic
        self.transport: ModemTransport | None = None
        self.line_sense: linesense.LineSense = linesense.NoLineSense()
        self.indicators: Indicators | None = None
        self.announcement: bytes | None = None
        self.off_hook = False
        self.on_hook_failures = 0
        self._on_hook_retry_at = 0.0
        self._seize_pause = contextlib.ExitStack()
        self.seized_first = False
        """The line was taken by :meth:`seize_first` and the call machine's Seize is still to
        come (it finds the line taken); see :meth:`settle_first`."""
        self.first_unsettled = False
        """:meth:`seize_first` tried, taken or not, and the call machine has not asked to seize
        since: :meth:`settle_first` makes sure of on-hook."""
        self.voice_thread: threading.Thread | None = None
        self.on_line_held: Callable[[LineHeld], None] | None = None
        """Where the time CallGuard held the line to speak the warning goes (the daemon's
        queue, for :meth:`CallMachine.line_held <callguard.core.call.CallMachine.line_held>`);
        called from the line warning's thread."""
        self.after_call_thread: threading.Thread | None = None
        self.after_call_due: float | None = None
        """When caller ID is to be re-asserted (monotonic seconds), or None: not wanted."""
        self._records: list[CallRecord] = []
        self.records_due: float | None = None
        """When the call records waiting here go to the writer (monotonic seconds)."""
        self.alert_active = False
        self._alert_signature: Signature | None = None

    # -- the actions ---------------------------------------------------------------------------

    def execute(self, actions: list[CallAction], line: LineState) -> None:
        for action in actions:
            if isinstance(action, Seize):
                self.seize()
            elif isinstance(action, Release):
                self.release()
            elif isinstance(action, Screened):
                self.board.changed()
                log.info(
                    "call from %s: %s", shown(action.caller.display), shown(action.verdict.reason)
                )
                self.observe("screened", (action.caller, action.verdict))
            elif isinstance(action, Warn):
                self.speaker.warn(action.caller, strong=action.strong)
                self.observe("warned", action)
            elif isinstance(action, SpeakOnLine):
                self.speak_on_line(action.call_id)
            elif isinstance(action, GroomingAlert):
                self.grooming_alert(action.record, line)
            elif isinstance(action, CallBackReminder):
                log.info("the phone was picked up soon after a suspicious call: reminding")
                self.speaker.remind()
                self.observe("call-back-reminder", action)
            elif isinstance(action, LogCall):
                self.log_call(action.record)
            elif isinstance(action, AfterCall):
                self.after_call()

    def seize_first(self) -> None:
        """Take the line for a caller the lists block outright, before the call machine has
        parsed the number (the daemon's first look): its own Seize then finds it done. If it
        fails, that Seize says ``ATH1`` again; if no Seize comes, :meth:`settle_first`."""
        try:
            self.seize()
            self.seized_first = True
        finally:
            self.first_unsettled = True

    def settle_first(self) -> None:
        """After the call machine's actions: a line the first look took (or tried to take: the
        modem may have taken it without saying so) for a call the machine did not seize is put
        down (the full screening has the last word, and the line is never left off-hook)."""
        if not self.first_unsettled:
            return
        self.first_unsettled = self.seized_first = False
        if self.off_hook:
            log.warning("the line was taken before screening, which then let the call ring")
            self.release()

    def seize(self) -> None:
        self.first_unsettled = False
        if self.seized_first:  # taken already by seize_first, for this call
            self.seized_first = False
            return
        transport = self._transport()
        self.off_hook = True  # assume the worst until the line is known to be on-hook
        if self.config.block.announce and self.announcement:
            # the voice session takes the line itself (AT+VLS=1), speaks, and puts it down
            with self.line_sense.pause():
                result = VoicePlayer(transport).play(self.announcement)
            self.off_hook = not result.on_hook
            self.observe("seized", None)
            return
        reply = transport.command("ATH1", timeout_s=2.0)
        # our own off-hook looks like a lifted phone to the line sensor: not a reading until
        # released (entered after ATH1: nothing may delay the seize; a pending reading is dropped)
        self._seize_pause.enter_context(self.line_sense.pause())
        if not reply.ok:
            raise ModemError(f"the modem would not take the line: {reply.describe()}")
        self.observe("seized", None)

    def release(self) -> None:
        """Put the line down; if the modem does not confirm, keep trying (module docstring)."""
        transport = self._transport()
        confirmed = False
        try:
            confirmed = transport.on_hook(attempts=2, attempt_timeout_s=1.0)
        except ModemError as exc:
            log.error("could not put the line on-hook: %s", exc)
        if confirmed:
            self.line_down()
            self.observe("released", None)
            return
        self.on_hook_failures += 1
        delay = min(ON_HOOK_RETRY_MAX_S, ON_HOOK_RETRY_S * 2 ** (self.on_hook_failures - 1))
        self._on_hook_retry_at = self.monotonic() + delay
        self.board.changed()
        log.critical(
            "the modem did not confirm that the line is on-hook (try %d); trying again in "
            "%.0f s, and re-initialising the modem if it still does not answer",
            self.on_hook_failures,
            delay,
        )
        if self.on_hook_failures % REINIT_AFTER_FAILURES == 0:
            transport.reinitialise("it did not confirm on-hook after a blocked call")

    def release_if_due(self, mono: float) -> None:
        """Retry an unconfirmed release when its timer is up."""
        if self.off_hook and self.on_hook_failures and mono >= self._on_hook_retry_at:
            self.release()

    def release_after_fault(self) -> None:
        """A fault while handling a call: make sure of on-hook (unless already being retried)."""
        self.seized_first = self.first_unsettled = False
        if self.off_hook and not self.on_hook_failures:
            self.release()

    def line_down(self) -> None:
        """The modem has confirmed on-hook (or was re-initialised): the line is not held."""
        if self.off_hook or self.on_hook_failures:
            self.board.changed()
        self.off_hook = False
        self.seized_first = self.first_unsettled = False
        self.on_hook_failures = 0
        self._seize_pause.close()

    def speak_on_line(self, call_id: int) -> None:
        """Join the answered call in voice mode, speak the warning, leave (worker thread);
        the time the line was held goes to ``on_line_held`` (module docstring)."""
        if self.voice_thread is not None and self.voice_thread.is_alive():
            return
        transport = self._transport()

        def speak() -> None:
            try:
                audio = self.prompts.modem_bytes("warning")
                with self.line_sense.pause():
                    since = self.monotonic()
                    result: PlaybackResult | None = None
                    try:
                        result = VoicePlayer(transport).play(audio)
                    finally:  # told before sensing resumes, whatever happened
                        hung_up = result is not None and not result.completed
                        self._line_held(LineHeld(call_id, since, self.monotonic(), hung_up))
                self.observe("line-warning", result)
            except Exception:
                log.exception("could not speak the warning down the line")

        self.voice_thread = threading.Thread(target=speak, name="line-warning", daemon=True)
        self.voice_thread.start()

    def _line_held(self, held: LineHeld) -> None:
        report = self.on_line_held
        if report is None:
            return
        try:
            report(held)
        except Exception:
            log.exception("could not report the time CallGuard held the line")

    def grooming_alert(self, record: CallRecord, line: LineState) -> None:
        who = shown(record.display or record.category.value)
        log.warning(
            "GROOMING ALERT: an unknown caller (%s) has kept the line for over %g minutes; "
            "the alert light is on until someone acknowledges it",
            who,
            self.config.grooming.minutes,
        )
        self.writer.alert(record.to_json())  # the file follows; the light goes on now
        if not self.alert_active:
            self.alert_active = True
            self.board.changed()
        if self.indicators is not None:
            self.indicators.alert_blinking()
        self.observe("grooming-alert", record)

    def acknowledge(self, by: str, line: LineState) -> None:
        if self.store.ack_alert(by=by) is not None:
            log.info("grooming alert acknowledged by %s", by)
        self.follow_alert(line, force=True)
        self.observe("acknowledged", by)

    def follow_alert(self, line: LineState, force: bool = False) -> None:
        """Follow the alert file: ``callguard ack`` may have cleared it while we run."""
        signature = file_signature(self.store.alert_path)
        if not force and signature == self._alert_signature:
            return
        self._alert_signature = signature
        active = self.store.alert_active()
        if active != self.alert_active:
            self.board.changed()
        self.alert_active = active
        if self.indicators is None:
            return
        if not active:
            self.indicators.alert_off()
        elif self.indicators.alert_state == "off":
            in_call = line is LineState.IN_CALL
            self.indicators.alert_blinking() if in_call else self.indicators.alert_steady()

    def log_call(self, record: CallRecord) -> None:
        if record.grooming_alert and self.indicators is not None and self.alert_active:
            self.indicators.alert_steady()  # the call is over; the light stays until ack
        self.board.call_logged(record)
        self._records.append(record)
        if self.records_due is None:
            self.records_due = self.monotonic() + SETTLE_S
        self.observe("logged", record)

    @property
    def waiting_records(self) -> int:
        """Call records not yet handed to the writer."""
        return len(self._records)

    def hand_over_if_due(self, mono: float) -> None:
        """Hand the call records to the writer once they have waited :data:`SETTLE_S`."""
        if self.records_due is not None and mono >= self.records_due:
            self.hand_over()

    def hand_over(self) -> None:
        """Hand every waiting call record to the writer now (and when stopping)."""
        records, self._records, self.records_due = self._records, [], None
        for record in records:
            self.writer.log_call(record.to_json())

    def after_call(self) -> None:
        """A call is over: re-assert caller ID :data:`SETTLE_S` later, with the line idle
        (:meth:`after_call_if_due`; module docstring)."""
        self.after_call_due = self.monotonic() + SETTLE_S

    def caller_id_asserted(self) -> None:
        """The modem was (re-)initialised, which asserts caller ID: nothing left to do."""
        self.after_call_due = None

    def after_call_at(self, line: LineState) -> float | None:
        """When :meth:`after_call_if_due` will start the re-assertion (monotonic seconds), or
        None while it is not wanted or cannot start: a call in progress (its own end asks
        again), the line held off-hook, or the last one still on its way (a deaf modem)."""
        worker = self.after_call_thread
        if (
            line is not LineState.IDLE
            or self.off_hook
            or self.transport is None
            or (worker is not None and worker.is_alive())
        ):
            return None
        return self.after_call_due

    def after_call_if_due(self, mono: float, line: LineState) -> None:
        """Start re-asserting caller ID on a worker thread when it is due: a deaf modem must
        not stall the main loop (its commands time out after seconds, and the next caller ID
        must be screened now), and the worker gives way to a new call."""
        due = self.after_call_at(line)
        transport = self.transport
        if due is None or mono < due or transport is None:
            return
        self.after_call_due = None
        mark = transport.line_events

        def run() -> None:
            try:
                transport.after_call(step_aside_after=mark)
            except ModemError as exc:
                # caller ID may be off (some firmware forgets it): init asserts it again
                log.warning("could not re-enable caller ID after the call: %s", exc)
                transport.reinitialise("it did not answer after a call")
            except Exception:
                log.exception("could not re-enable caller ID after the call")

        self.after_call_thread = threading.Thread(target=run, name="after-call", daemon=True)
        self.after_call_thread.start()

    def _transport(self) -> ModemTransport:
        if self.transport is None:
            raise ModemError("the modem has not been started")
        return self.transport
