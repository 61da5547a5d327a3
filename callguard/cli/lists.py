"""``callguard allow|block|protect add|remove|list|import``: the family's lists.

``callguard block import --community FILE`` and ``block list --community``: the volunteer
group's community block list (a separate file of numbers only, see
:mod:`callguard.store.biglist`), checked after the family's own lists.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from callguard.cli.common import Commands, Parser, open_store
from callguard.core.lists import (
    LIST_NAMES,
    LIST_TITLES,
    once_target,
    parse_duration,
    shown_note,
    target_for,
)
from callguard.core.numbers import for_people
from callguard.errors import UsageError
from callguard.texts import shown, shown_json


def register(sub: Commands) -> None:
    for list_name in LIST_NAMES:
        _add_list_commands(sub, list_name)


_LIST_HELP = {
    "allow": "numbers that always ring through (family, friends, the GP)",
    "block": "numbers that are answered and put down before the phone rings",
    "protect": "numbers that never call out (999, 101, the bank's card number): "
    "a call showing one is a fake",
}


def _add_list_commands(sub: Commands, list_name: str) -> None:
    title = LIST_TITLES[list_name]
    parser = sub.add_parser(list_name, help=f"the {title}: {_LIST_HELP[list_name]}")
    verbs = parser.add_subparsers(dest="verb", metavar="ACTION", parser_class=Parser)
    verbs.required = True

    add = verbs.add_parser("add", help=f"add a number to the {title}, or update its name")
    add.add_argument(
        "number", help="as you would dial it, e.g. '01707 354000' or '+33 1 23 45 67 89'"
    )
    add.add_argument("--name", default="", help="who it is, e.g. 'Daughter (Sue)'")
    add.add_argument("--note", default="", help="anything worth remembering about it")
    add.add_argument("--prefix", action="store_true", help="a rule for every number starting so")
    add.add_argument("--force", action="store_true", help="move it here from a conflicting list")
    add.add_argument("--by", default=None, help="who is adding it (default: your login name)")
    add.set_defaults(func=_cmd_list_add, list_name=list_name)

    remove = verbs.add_parser("remove", help=f"take a number off the {title}")
    remove.add_argument("number")
    remove.add_argument("--prefix", action="store_true", help="remove a prefix rule")
    remove.set_defaults(func=_cmd_list_remove, list_name=list_name)

    if list_name == "allow":
        once = verbs.add_parser(
            "once",
            help="let one expected caller through for a while (e.g. a hospital calling back), "
            "then stop by itself",
        )
        once.add_argument(
            "number", help="as you would dial it, or 'withheld' for a call that shows no number"
        )
        once.add_argument(
            "--for",
            dest="length",
            default="2h",
            help="how long: 2h (the default), 90m, 1h30m, up to 7d",
        )
        once.add_argument("--name", default="", help="who is expected, e.g. 'Lister hospital'")
        once.add_argument("--by", default=None, help="who is asking (default: your login name)")
        once.set_defaults(func=_cmd_allow_once, list_name=list_name)
    if list_name == "block":
        last = verbs.add_parser(
            "last", help="block the last unknown caller (the button's long press does the same)"
        )
        last.add_argument("--name", default="", help="a name for it (default: what was shown)")
        last.add_argument("--by", default=None, help="who is blocking it (default: your login)")
        last.set_defaults(func=_cmd_block_last, list_name=list_name)

    show = verbs.add_parser("list", help=f"show the {title}")
    show.add_argument("--json", action="store_true", help="a JSON array of entries")
    if list_name == "block":
        show.add_argument(
            "--community",
            action="store_true",
            help="the community block list instead: its size and date, checked",
        )
    show.set_defaults(func=_cmd_list_show, list_name=list_name)

    imp = verbs.add_parser(
        "import", help="add every number in a CSV (number,name[,note]) or vCard file"
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--skip-invalid", action="store_true", help="import the good lines anyway")
    imp.add_argument(
        "--prefix", action="store_true", help="every number in the file is a prefix rule"
    )
    imp.add_argument(
        "--force", action="store_true", help="move numbers here from conflicting lists"
    )
    imp.add_argument("--by", default=None, help="who is importing (default: your login name)")
    if list_name == "block":
        imp.add_argument(
            "--community",
            action="store_true",
            help="FILE is the volunteer group's community block list (one number a line, or "
            "the first column of a CSV): it replaces the community list, kept apart from the "
            "family's block list",
        )
    imp.set_defaults(func=_cmd_list_import, list_name=list_name)


def _cmd_list_add(args: argparse.Namespace) -> int:
    config, store = open_store(args)
    target = target_for(args.number, config.screening.region, args.prefix)
    result = store.add(
        args.list_name, target, name=args.name, note=args.note, by=args.by, force=args.force
    )
    title = LIST_TITLES[args.list_name]
    label = f" as '{shown(result.entry.name)}'" if result.entry.name else ""
    verb = "Updated" if result.updated else "Added"
    where = "on" if result.updated else "to"
    print(f"{verb} {shown(target.describe())} {where} the {title}{label}.")
    for other in result.moved_from:
        print(f"It was on the {LIST_TITLES[other]}; it has been taken off.")
    return 0


def _cmd_allow_once(args: argparse.Namespace) -> int:
    config, store = open_store(args)
    length = parse_duration(args.length)
    target = once_target(args.number, config.screening.region)
    until = store.clock() + length
    store.allow_once(target, until, name=args.name, by=args.by)
    label = f" ({shown(args.name)})" if args.name else ""
    print(
        f"{shown(target.describe()).capitalize()}{label} will ring through without a warning "
        f"until {until:%H:%M on %d %b}; after that, CallGuard screens them as before."
    )
    return 0


def _cmd_block_last(args: argparse.Namespace) -> int:
    from callguard.core.record import last_unknown_caller

    config, store = open_store(args)
    call = last_unknown_caller(store.log.read(limit=200)[::-1])
    if call is None:
        raise UsageError(
            "there is no unknown caller in the call log to block ('callguard log' shows the "
            "calls); block a number with 'callguard block add NUMBER'"
        )
    when = shown(str(call.get("started", ""))[:16].replace("T", " "))
    number = call.get("number")
    if not number:
        raise UsageError(
            f"the last unknown caller ({when}) showed no number ({call.get('category')}), so "
            "it cannot be blocked by number; to block every such call set screening.withheld "
            '(or screening.unavailable) to "block"'
        )
    target = target_for(str(number), config.screening.region)
    name = args.name or str(call.get("name") or "") or f"last caller, {when}"
    result = store.add(
        "block", target, name=name[:60], note=f"blocked as the last caller ({when})", by=args.by
    )
    verb = "is on the block list already" if result.updated else "is now on the block list"
    print(f"{shown(target.describe())}, who called at {when}, {verb}.")
    print(f"Undo with: callguard block remove {shown(for_people(target.number))!r}")
    return 0


def _cmd_list_remove(args: argparse.Namespace) -> int:
    config, store = open_store(args)
    target = target_for(args.number, config.screening.region, args.prefix)
    entry = store.remove(args.list_name, target)
    label = f" ({shown(entry.name)})" if entry.name else ""
    print(f"Removed {shown(target.describe())}{label} from the {LIST_TITLES[args.list_name]}.")
    return 0


def _cmd_list_show(args: argparse.Namespace) -> int:
    if getattr(args, "community", False):
        return _cmd_community_show(args)
    config, store = open_store(args)
    entries = sorted(store.entries(args.list_name), key=lambda e: (e.name.lower(), e.number))
    if args.json:
        print(shown_json([e.to_json() for e in entries]))
        return 0
    title = LIST_TITLES[args.list_name]
    if not entries:
        print(f"The {title} is empty.")
        return 0
    region = config.screening.region
    now = store.clock()
    rows = [
        (
            shown(for_people(e.number, region)),
            shown(e.name),
            shown(shown_note(e, now)),
            e.added[:10],
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"The {title} ({len(entries)}):")
    for number, name, note, added in rows:
        print(
            f"  {number:<{widths[0]}}  {name:<{widths[1]}}  {note:<{widths[2]}}  "
            f"added {shown(added)}"
        )
    return 0


def _cmd_list_import(args: argparse.Namespace) -> int:
    if getattr(args, "community", False):
        return _cmd_community_import(args)
    from callguard.store.contacts import preview_file

    config, store = open_store(args)
    preview = preview_file(args.file, config.screening.region, args.prefix)
    items, problems = preview.for_cli()
    if items:  # what was passed over or changed without harm (an e-mail-only contact ...)
        for line, message in preview.notes:
            print(f"{shown(args.file)}:{line}: note: {shown(message)}", file=sys.stderr)
    for line, message in problems:
        print(f"{shown(args.file)}:{line}: {shown(message)}", file=sys.stderr)
    if problems and not args.skip_invalid:
        raise UsageError(
            f"{len(problems)} bad line(s) in {args.file}; nothing was imported. Fix them, or "
            "run again with --skip-invalid to import the good lines"
        )
    if not items:
        raise UsageError(f"{args.file} has no numbers to import")
    added, updated = store.add_many(args.list_name, items, by=args.by, force=args.force)
    skipped = f", skipped {len(problems)} bad line(s)" if problems else ""
    print(
        f"Imported {shown(args.file)} into the {LIST_TITLES[args.list_name]}: "
        f"{added} added, {updated} updated{skipped}."
    )
    return 0


# -- the community block list ------------------------------------------------------------------

_SHOWN_PROBLEMS = 50


def _cmd_community_import(args: argparse.Namespace) -> int:
    from callguard.store.biglist import NumberFile, NumberSetBuilder, community_path

    for option, given in (("--prefix", args.prefix), ("--force", args.force), ("--by", args.by)):
        if given:
            raise UsageError(
                f"{option} does not go with --community: the community block list holds whole "
                "numbers only, kept apart from the family's lists (nothing moves between them), "
                "and records no names"
            )
    config, store = open_store(args)
    started = time.perf_counter()
    source = NumberFile(args.file, config.screening.region)
    numbers = NumberSetBuilder()
    numbers.extend(source)
    for line, message in source.problems[:_SHOWN_PROBLEMS]:
        print(f"{shown(args.file)}:{line}: {shown(message)}", file=sys.stderr)
    if source.bad > _SHOWN_PROBLEMS:
        print(
            f"{shown(args.file)}: ... and {source.bad - _SHOWN_PROBLEMS:,} more bad line(s)",
            file=sys.stderr,
        )
    if source.bad and not args.skip_invalid:
        raise UsageError(
            f"{source.bad:,} bad line(s) in {args.file}; nothing was imported. Fix them, or "
            "run again with --skip-invalid to import the good lines"
        )
    if not numbers.added:
        raise UsageError(f"{args.file} has no numbers to import")
    path = community_path(store.dir)
    count = numbers.write(path, name="community")
    elapsed = time.perf_counter() - started
    repeats = numbers.added - count
    notes = [f"{repeats:,} repeated number(s) counted once"] if repeats else []
    if source.bad:
        notes.append(f"skipped {source.bad:,} bad line(s)")
    print(
        f"Imported {shown(args.file)} as the community block list: {count:,} numbers"
        + (f" ({'; '.join(notes)})" if notes else "")
        + f", in {elapsed:.1f} s. It replaces the previous community list; the daemon "
        "picks it up by itself."
    )
    return 0


def _cmd_community_show(args: argparse.Namespace) -> int:
    from callguard.store.biglist import BigList, community_path

    _, store = open_store(args)
    path = community_path(store.dir)
    try:
        biglist = BigList.open(path, check_order=True)
    except FileNotFoundError:
        if args.json:
            print("null")
        else:
            print(
                "There is no community block list. Import one with "
                "'callguard block import --community FILE'."
            )
        return 0
    try:
        created = biglist.created_at
        if args.json:
            print(
                shown_json(
                    {
                        "name": biglist.name,
                        "count": len(biglist),
                        "created": created.isoformat(),
                        "file": str(path),
                        "size": biglist.size,
                        "sha256": biglist.sha256.hex(),
                    }
                )
            )
        else:
            print(
                f"The community block list ('{shown(biglist.name)}'): {len(biglist):,} numbers, "
                f"imported {created:%Y-%m-%d %H:%M} UTC; {shown(path)}, "
                f"{biglist.size / 1e6:.1f} MB, checked."
            )
    finally:
        biglist.close()
    return 0
