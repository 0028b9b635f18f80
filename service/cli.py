"""The ``fieldsync`` command: serve, users, export-schema, simulate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from service.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fieldsync", description="FieldSync sync server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--memory", action="store_true", default=None, help="embedded store in memory")
    serve.add_argument("--data-dir", type=Path, default=None, help="embedded store directory")

    users = commands.add_parser("users", help="manage users against MONGODB_URI")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    create = users_commands.add_parser("create", help="create a user and print its first token")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["ADMIN", "MANAGER", "REP", "INTEGRATOR"])

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
            asyncio.run(_create_user(Settings.from_env(os.environ), args.name, args.role))
        case "simulate":
            _simulate(args)
        case "export-schema":
            from service.api.schema import printed_schema

            text = printed_schema()
            if args.output:
                args.output.write_text(text)
            else:
                sys.stdout.write(text)


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
                  "every outlet is identical on all phones and the server")  # fmt: skip
    finally:
        simulation.close()


async def _create_user(settings: Settings, name: str, role: str) -> None:
    from service.auth.access import AccessService
    from service.auth.roles import Role
    from service.store.database import connect

    if not settings.mongodb_uri:
        sys.exit("fieldsync users create needs MONGODB_URI (the service's store)")
    store = connect(settings.mongodb_uri, settings.database, embedded=False)
    try:
        user, issued = await AccessService(store).create_user(name, Role(role))
    finally:
        await store.close()
    print(f"user {user.id} ({user.role.value}) token: {issued.token}")


if __name__ == "__main__":
    main()
