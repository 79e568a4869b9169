"""Print the OpenAPI document: `python -m impl_rest.openapi > contract/openapi.json`.

FastAPI generates it; the Flask app serves this committed file and both apps are tested against
it. The document does not depend on settings, so it is stable.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from flashcards.settings import Settings


def document() -> dict[str, Any]:
    from impl_rest.app import create_app

    return create_app(Settings(environment="test")).openapi()


def text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> None:
    sys.stdout.write(text())


if __name__ == "__main__":
    main()
