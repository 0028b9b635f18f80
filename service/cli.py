"""The ``fieldsync`` command: serve, users, export-schema, simulate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from service.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fieldsync", description="FieldSync sync server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    _store_flags(serve)
    serve.add_argument("--memory", action="store_true", default=None, help="embedded store in memory")

    users = commands.add_parser("users", help="manage users (MONGODB_URI, else the embedded store's data dir)")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    create = users_commands.add_parser("create", help="create a user and print its first token")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["ADMIN", "MANAGER", "REP", "INTEGRATOR"])
    create.add_argument("--password", action="store_true", help="ADMIN/MANAGER: also ask for a console password")
    _store_flags(create)
    listing = users_commands.add_parser("list", help="list users")
    _store_flags(listing)
    password = users_commands.add_parser("set-password", help="set an ADMIN's or MANAGER's console password")
    password.add_argument("--name", required=True)
    _store_flags(password)

    schema = commands.add_parser("export-schema", help="print the GraphQL schema")
    schema.add_argument("--output", type=Path, default=None)

    simulate = commands.add_parser("simulate", help="run a simulated field day against a server")
    simulate.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    simulate.add_argument("--token", default=os.environ.get("FIELDSYNC_ADMIN_TOKEN"), help="an ADMIN token")
    simulate.add_argument("--reps", type=int, default=4)
    simulate.add_argument("--outlets", type=int, default=6)
    simulate.add_argument("--steps", type=int, default=8, help="20-minute steps in the day")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--no-faults", action="store_true", help="a perfect network")
    simulate.add_argument(
        "--speed", type=float, default=0.0, help="simulated over wall time (60: a 20-minute step in 20 s); 0: flat out"
    )
    simulate.add_argument("--check", action="store_true", help="verify the invariants against the server")
    simulate.add_argument(
        "--leave-open", action="store_true", help="leave refusals for a person to fix (a demo); no --check"
    )

    args = parser.parse_args(argv)
    match args.command:
        case "serve":
            _serve(
                Settings.from_env(
                    os.environ, host=args.host, port=args.port, memory=args.memory, data_dir=args.data_dir
                )
            )
        case "users":
            settings = Settings.from_env(os.environ, data_dir=args.data_dir)
            match args.users_command:
                case "create":
                    asyncio.run(_create_user(settings, args.name, args.role, args.password))
                case "list":
                    asyncio.run(_list_users(settings))
                case "set-password":
                    asyncio.run(_set_password(settings, args.name))
        case "simulate":
            _simulate(args)
        case "export-schema":
            from service.api.schema import printed_schema

            text = printed_schema()
            if args.output:
                args.output.write_text(text)
            else:
                sys.stdout.write(text)


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="embedded store directory (default ./data)")


def _serve(settings: Settings) -> None:
    import logging

    import uvicorn

    from service.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        ws="websockets-sansio",
        ws_ping_interval=None,  # one keep-alive: graphql-transport-ws pings; silence closes (see api/websocket.py)
        loop="uvloop",
        http="httptools",
    )


def _simulate(args: argparse.Namespace) -> None:
    from fieldsync_client.simulator import Day, Simulation

    if not args.token:
        sys.exit("fieldsync simulate needs --token (or FIELDSYNC_ADMIN_TOKEN): an ADMIN token of the server")
    if args.check and args.leave_open:
        sys.exit("--check needs the day settled: drop --leave-open")
    day = Day(
        reps=args.reps,
        outlets=args.outlets,
        steps=args.steps,
        seed=args.seed,
        faults=not args.no_faults,
        settle=not args.leave_open,
        speed=args.speed,
    )
    simulation = Simulation(args.url, args.token, day)
    try:
        simulation.setup()
        simulation.run_day()
        print(simulation.report())
        if args.check:
            failures = simulation.check()
            for failure in failures:
                print(f"CHECK FAILED: {failure}")
            if failures:
                sys.exit(1)
            print("check: every decided change is in history exactly once; every phone equals its scope; "
                  "every outlet is identical on all phones and the server; every photo arrived")  # fmt: skip
    finally:
        simulation.close()


@contextlib.asynccontextmanager
async def _admin_store(settings: Settings) -> AsyncIterator:  # type: ignore[type-arg]
    """The service's store: ``MONGODB_URI``, else the embedded store on the data dir (a running service's too)."""
    from service.app import RETIRED_INDEXES, declared_indexes
    from service.store.database import connect, ensure_indexes
    from service.store.embedded import start_embedded_store

    embedded = None if settings.mongodb_uri else start_embedded_store(settings.data_dir)
    uri = settings.mongodb_uri or (embedded.uri if embedded else "")
    store = connect(uri, settings.database, embedded=embedded is not None)
    try:
        await ensure_indexes(store, declared_indexes(settings), RETIRED_INDEXES)
        yield store
    finally:
        await store.close()
        if embedded is not None:
            embedded.stop()


def _ask_password(name: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")  # piped: the first line
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        sys.exit("the passwords differ")
    return first


async def _create_user(settings: Settings, name: str, role: str, with_password: bool) -> None:
    from service.auth.access import AccessService
    from service.auth.roles import Role
    from service.auth.sign_in import BadPassword, SignInService

    async with _admin_store(settings) as store:
        user, issued = await AccessService(store).create_user(name, Role(role))
        print(f"user {user.id} ({user.role.value}) token: {issued.token}")
        if with_password:
            try:
                await SignInService(store).set_password(user, _ask_password(name))
            except BadPassword as error:
                sys.exit(f"no password set: {error}")
            print(f"{name} signs in to the console with that password")


async def _list_users(settings: Settings) -> None:
    from service.store import identity

    async with _admin_store(settings) as store:
        for user in await identity.list_users(store):
            print(f"{user.id}\t{user.role.value}\t{user.name}{'' if user.active else '\t(inactive)'}")


async def _set_password(settings: Settings, name: str) -> None:
    from service.auth.access import Conflicting
    from service.auth.sign_in import BadPassword, SignInService
    from service.store import identity

    async with _admin_store(settings) as store:
        found = [user for user in await identity.list_users(store) if user.name.casefold() == name.casefold()]
        if len(found) != 1:
            sys.exit(f"{len(found)} users are named {name!r}; sign-in names must be unique")
        try:
            await SignInService(store).set_password(found[0], _ask_password(name))
        except (BadPassword, Conflicting) as error:
            sys.exit(f"no password set: {error}")
        print(f"{found[0].name} signs in to the console with the new password")


if __name__ == "__main__":
    main()
