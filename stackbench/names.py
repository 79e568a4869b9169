"""Names on the command line, checked before anything starts: an unknown implementation, server,
stack, scenario or profile is refused in one line that lists the valid names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class UnknownName(ValueError):
    """A name that is not in its registry; the message is the one line the CLI prints."""


def check(kind: str, given: Iterable[str] | None, valid: Sequence[str]) -> None:
    unknown = [name for name in (given or ()) if name not in valid]
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        raise UnknownName(f"unknown {kind} {listed}; choose from: {', '.join(valid)}")


def implementations() -> list[str]:
    """What `--impl` selects: the apps, each floor's implementation, and `floors` (all floors)."""
    from loadtests.stacks import STACKS

    return [*dict.fromkeys(s.impl for s in STACKS.values()), "floors"]


def servers() -> list[str]:
    from loadtests.servers import all_servers

    return all_servers()


def stacks() -> list[str]:
    from loadtests.stacks import STACKS

    return list(STACKS)


def scenarios() -> list[str]:
    from loadtests import scenarios as registry

    return [str(name) for name in registry.SCENARIOS]


def profiles() -> list[str]:
    from loadtests.profiles import PROFILES

    return list(PROFILES)


def check_bench(*, profile: str, impls: list[str] | None, servers_: list[str] | None,
                scenarios_: list[str] | None, stacks_: list[str] | None) -> None:
    """Every name `stackbench bench` was given, and that together they select some stack."""
    from loadtests.stacks import select

    check("profile", [profile], profiles())
    check("implementation", impls, implementations())
    check("server", servers_, servers())
    check("stack", stacks_, stacks())
    check("scenario", scenarios_, scenarios())
    if (impls or servers_ or stacks_) and not select(stacks_, impls, servers_):
        raise UnknownName("no stack matches these --stack/--impl/--server choices; see `stackbench stacks`")


def check_serve(impl: str, server: str) -> None:
    """`stackbench serve`: an app, and a server of its kind (WSGI for Flask, ASGI for the others)."""
    from loadtests.servers import all_servers
    from loadtests.stacks import APPS

    check("implementation", [impl], list(APPS))
    check(f"{APPS[impl].kind.upper()} server", [server], all_servers(APPS[impl].kind))
