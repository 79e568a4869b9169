"""Print the schema's SDL: `python -m impl_graphql.sdl > contract/schema.graphql`.

The schema does not depend on settings (only the extensions do), so the SDL is stable.
"""

from __future__ import annotations

import sys

from flashcards.settings import Settings


def sdl() -> str:
    from impl_graphql.schema import build_schema

    return build_schema(Settings(environment="test")).as_str().rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(sdl())


if __name__ == "__main__":
    main()
