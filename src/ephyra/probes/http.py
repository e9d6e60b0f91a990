"""``http``: an HTTP(S) endpoint (an API's URL) answers with a status below 500; a
redirect is an answer and is not followed."""

from __future__ import annotations

from typing import ClassVar

import requests

from ephyra.errors import UsageError
from ephyra.probes.base import Unreachable
from ephyra.urls import is_http, redact


class HttpProbe:
    needs_target: ClassVar[bool] = True

    def __init__(self, target: str, timeout: float, cloud: str | None) -> None:
        self.target, self.timeout = target, timeout

    @classmethod
    def check(cls, target: str) -> None:
        if not is_http(target):
            raise UsageError(f"an http(s) URL, not {redact(target)[:80]!r}")

    def ask(self) -> None:
        try:
            response = requests.get(self.target, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise Unreachable(f"no answer in {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise Unreachable(type(exc).__name__) from None
        response.close()
        if response.status_code >= 500:
            raise Unreachable(f"answered {response.status_code}")
